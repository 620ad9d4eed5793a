"""What the sandbox engine asks of each resource kind it applies to an AWS-compatible endpoint.

The sandbox engine (``SandboxEngine``) runs a target's Pulumi program under Pulumi's
mocks and, for every resource the program declares, calls the ``SandboxKind`` of its
type token: ``create`` makes the resource through boto3 and returns its real id and
the state pulumi-aws would report; ``delete`` removes it on ``destroy``. The kinds
live with the programs that declare them (``mapt.targets``), one record per resource
type; this layer only defines the contract, so ``mapt.stacks`` never learns about
VPCs or launch templates.

Property names are Pulumi's (camelCase, as in ``MockResourceArgs.inputs`` and a
checkpoint's ``outputs``), never boto3's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class SandboxAws(Protocol):
    """Clients for the sandbox endpoint in the region of the resource's provider."""

    @property
    def region(self) -> str:
        """The region of the provider the resource was declared with."""
        ...

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` (``ec2``, ``autoscaling``...) for that region."""
        ...


@dataclass(frozen=True)
class AppliedResource:
    """What the endpoint made of a declared resource.

    ``id`` is the physical id (``vpc-...``, an ARN, a group name); ``outputs`` the
    resource's full state as a real deployment records it: its inputs plus what the
    provider computes (``arn``, ``publicIp``, ``dnsName``...).
    """

    id: str
    outputs: Mapping[str, Any] = field(default_factory=dict)


class SandboxKind(Protocol):
    """How one Pulumi resource type is created and deleted on the endpoint.

    ``create`` fails with the endpoint's own error (a botocore ``ClientError``) when
    it refuses an input, as a real deployment would. ``delete`` is idempotent: a
    resource that is already gone is not an error.
    """

    @property
    def type_token(self) -> str:
        """The Pulumi type token, e.g. ``aws:ec2/vpc:Vpc``."""
        ...

    def create(self, aws: SandboxAws, name: str, inputs: Mapping[str, Any]) -> AppliedResource:
        """Create the resource named ``name`` (the logical name) from ``inputs``."""
        ...

    def delete(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> None:
        """Delete the resource ``id`` whose recorded state is ``outputs``."""
        ...


@runtime_checkable
class RefreshableKind(SandboxKind, Protocol):
    """A kind that can tell whether a resource it made still exists (a refresh's read).

    An ``up`` with ``refresh`` forgets the resources the endpoint no longer has, as
    ``pulumi up --refresh`` does, so the program makes them again.
    """

    def exists(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> bool:
        """Whether resource ``id`` (recorded as ``outputs``) still exists."""
        ...


SandboxInvoke = Callable[[SandboxAws, Mapping[str, Any]], Mapping[str, Any]]
"""Answers one invoke token (``aws:ec2/getAmi:getAmi``...) from the endpoint."""
