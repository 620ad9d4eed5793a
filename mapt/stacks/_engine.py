"""What every engine offers: stack references, the ``Engine`` protocol, preview results.

Targets and allocation talk to an ``Engine`` and never to Pulumi directly, so the
same code runs on the real Pulumi engine (``PulumiEngine``), in-process for
``--dry-run`` (``DryRunEngine``) or in tests of whole flows (``InMemoryEngine``). The
engine is always passed in explicitly; nothing switches it behind the caller's back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mapt.core import InputError, RunContext, redact, validate_project_name
from mapt.stacks._backend import parse_backend_url
from mapt.stacks._inventory import StackSummary

Program = Callable[[], None]

# Pulumi stack names: letters, digits, '-', '_' and '.' (tokens.ParseStackName).
_STACK_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# Provider settings that hold credentials. They reach providers through the
# environment (AWS_ACCESS_KEY_ID etc.); in stack config they would be stored in the
# state and shown by ``pulumi config``.
FORBIDDEN_CONFIG_KEYS = frozenset(
    {"aws:accessKey", "aws:secretKey", "aws:token", "aws:assumeRole", "aws:assumeRoles"}
)


@dataclass(frozen=True)
class StackRef:
    """Which stack: mapt project (the Pulumi project), stack name and state backend.

    ``name`` is the mapt stack kind (``spotOption``, ``host``); the Pulumi stack is
    ``<name>-<project>``, as in the Go mapt, so existing state stays addressable.
    ``backend_url`` None means the local default backend. Invalid values raise
    ``InputError`` on construction, before any engine call.
    """

    project: str
    name: str
    backend_url: str | None = None

    def __post_init__(self) -> None:
        validate_project_name(self.project)
        if not _STACK_PART.fullmatch(self.name):
            raise InputError(
                f"stack name {self.name!r} is not allowed: use letters, digits, '-', '_' "
                "and '.', starting with a letter or digit"
            )
        if self.backend_url is not None:
            parse_backend_url(self.backend_url)

    @property
    def stack_name(self) -> str:
        """The Pulumi stack name, ``<name>-<project>`` (e.g. ``spotOption-demo``)."""
        return f"{self.name}-{self.project}"

    def urn(self, type_token: str, name: str) -> str:
        """The URN Pulumi gives a top-level resource ``name`` of ``type_token`` in this stack."""
        return f"urn:pulumi:{self.stack_name}::{self.project}::{type_token}::{name}"

    @classmethod
    def for_context(cls, context: RunContext, name: str) -> StackRef:
        """The stack ``name`` of the run's project, in the run's backend."""
        return cls(project=context.project_name, name=name, backend_url=context.backend_url)


@dataclass(frozen=True)
class PlannedStep:
    """One resource change a preview found: operation, type token and logical name.

    ``op`` is Pulumi's step operation (``create``, ``update``, ``replace``,
    ``delete``, ``same``...). The dry-run engine, which sees no deployed state,
    reports ``create`` for a stack that does not exist and ``declare`` (declared by
    the program, not compared with what is deployed) for one that does.
    """

    op: str
    type: str
    name: str


@dataclass(frozen=True)
class StackPreview:
    """What an ``up`` of the stack would do: counts per operation and the steps."""

    stack_name: str
    changes: Mapping[str, int] = field(default_factory=dict)
    steps: tuple[PlannedStep, ...] = ()

    def count(self, op: str) -> int:
        """How many resources the preview reports for ``op``."""
        return self.changes.get(op, 0)


@runtime_checkable
class Engine(Protocol):
    """The operations targets and allocation need on stacks.

    Outputs are plain values (secrets unwrapped). Failures are ``MaptError``s:
    ``StateLockedError`` for a locked stack, ``StackNotFoundError`` (an
    ``OperationError``) from ``outputs`` of a stack that does not exist,
    ``OperationError`` for a failed operation; a failed ``up`` never returns.
    """

    def exists(self, ref: StackRef) -> bool:
        """Whether the stack exists in its backend."""
        ...

    def outputs(self, ref: StackRef) -> dict[str, Any]:
        """The stack's outputs from its last update."""
        ...

    def up(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
        refresh: bool = False,
        replace: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Create or update the stack from ``program``; return its outputs.

        ``replace``: URNs (``StackRef.urn``) of resources to replace even where the
        program declares them unchanged, as ``pulumi up --replace`` does: the new one is
        made first, the old one deleted at the end, and the state records the new one.
        """
        ...

    def preview(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
    ) -> StackPreview:
        """What ``up`` would change, without changing anything."""
        ...

    def destroy(self, ref: StackRef) -> bool:
        """Destroy the stack's resources and remove it; False if it did not exist."""
        ...

    def force_unlock(self, ref: StackRef) -> list[str]:
        """Remove the stack's lock entries (left by dead runs); return what was removed."""
        ...

    def list_stacks(self, backend_url: str | None) -> list[StackSummary]:
        """Every stack in the backend, with its plain outputs and lock entries."""
        ...

    def purge_project_state(self, backend_url: str | None, project: str) -> list[str]:
        """Delete what the backend still keeps of ``project`` (history, backups, locks)."""
        ...


def check_config(config: Mapping[str, str] | None) -> dict[str, str]:
    """Return ``config`` as a dict if it is safe to store as plain stack config.

    Refuses credential settings and any value holding a registered secret
    (``mapt.core.register_secret``): plain config is written to the state and to
    ``Pulumi.<stack>.yaml`` unencrypted. The error names the key, never the value.
    """
    checked: dict[str, str] = {}
    for key, value in (config or {}).items():
        if not isinstance(value, str):
            raise InputError(f"stack config {key!r} must be a string, not {type(value).__name__}")
        if key in FORBIDDEN_CONFIG_KEYS:
            raise InputError(
                f"stack config {key!r} would store credentials in the state; "
                "credentials reach the provider through the environment"
            )
        if redact(value) != value:
            raise InputError(f"stack config {key!r} holds a secret value; refusing to store it")
        checked[key] = value
    return checked
