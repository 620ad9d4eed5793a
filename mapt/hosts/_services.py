"""What the host lifecycle acts through: the stacks engine, the launch, readiness and setup.

One typed object holds them, so each caller picks its implementations explicitly: the
CLI the real ones (or what a test hands in as the root context object), the service
its own per execution, tests in-memory ones. The choice is an argument, never an
environment switch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TextIO, cast

if TYPE_CHECKING:
    from datetime import datetime

    from mapt.hosts._create import HostChecks
    from mapt.hosts._progress import Progress
    from mapt.hosts._records import HostStatus
    from mapt.stacks import Engine
    from mapt.targets import SshAccess
    from mapt.targets.aws import (
        GroupReplacement,
        HostHealth,
        HostRequest,
        HostSetup,
        LaunchedInstance,
    )

# Builds the engine for a run from the secrets provider and the debug switch.
EngineFactory = Callable[[str | None, bool], "Engine"]
# Waits until the host answers over SSH; raises a MaptError when it does not.
ReadinessCheck = Callable[["SshAccess"], None]
# Confirms a spot group has a running instance: (region, group name) -> instance id.
LaunchCheck = Callable[[str, str], str]
# The public address of a spot group's instance: (region, instance id) -> the instance
# and its address (a spot host without a load balancer points its name there).
AddressLookup = Callable[[str, str], "LaunchedInstance"]
# Hands a ready host its secrets: (access, request, the stack's outputs) -> what was done;
# None: nothing was delivered (the sandbox logs in to no machine).
HostSetupStep = Callable[["SshAccess", "HostRequest", "Mapping[str, Any]"], "HostSetup | None"]
# Asks AWS whether the machine of a deployed host (as its state describes it) still runs.
HealthCheck = Callable[["HostStatus"], "HostHealth"]
# Waits for a spot group to replace an interrupted instance: (region, group name, the
# interrupted instance, the interruption's time, the bound in seconds, whether to stop
# waiting) -> what it did, or None when told to stop.
ReplacementWait = Callable[
    [str, str, str, "datetime", float, "Callable[[], bool] | None"], "GroupReplacement | None"
]


def pulumi_engine(
    secrets_provider: str | None, debug: bool, *, progress_stream: TextIO | None = None
) -> Engine:
    """The real engine: the Pulumi CLI through the Automation API.

    ``progress_stream`` gets its per-resource progress lines (default: stderr).
    """
    from mapt.stacks import PulumiEngine

    return PulumiEngine(
        secrets_provider=secrets_provider, debug=debug, progress_stream=progress_stream
    )


def pulumi_cli_present() -> None:
    """What the Pulumi engine needs to change state: its CLI, found and version-checked.

    Raises ``PrerequisiteError`` (exit 5). Reading state needs no CLI, so only
    operations about to change state check it, before any AWS call or lock.
    """
    from mapt.stacks import pulumi_command

    pulumi_command()


def ssh_readiness(access: SshAccess) -> None:
    """The real readiness check: SSH in and wait for cloud-init (40 min at most)."""
    from mapt.targets import DEFAULT_READY_TIMEOUT, wait_until_ready

    wait_until_ready(access, timeout=DEFAULT_READY_TIMEOUT)


def auto_scaling_launch(region: str, group_name: str) -> str:
    """The real launch check: the group's scaling activities, through boto3."""
    from mapt.core import aws_session
    from mapt.targets.aws import verify_spot_launch

    return verify_spot_launch(aws_session(), region, group_name)


def auto_scaling_replacement(
    region: str,
    group_name: str,
    interrupted: str,
    since: datetime,
    timeout: float,
    abandon: Callable[[], bool] | None,
) -> GroupReplacement | None:
    """The real wait for an interrupted spot instance's replacement, through boto3."""
    from mapt.core import aws_session
    from mapt.targets.aws import wait_for_replacement

    return wait_for_replacement(
        aws_session(),
        region,
        group_name,
        interrupted,
        since=since,
        timeout=timeout,
        abandon=abandon,
    )


def ec2_instance_address(region: str, instance_id: str) -> LaunchedInstance:
    """The real address lookup: the instance's public IP, through boto3."""
    from mapt.core import aws_session
    from mapt.targets.aws import instance_public_address

    return instance_public_address(aws_session(), region, instance_id)


def aws_host_health(status: HostStatus) -> HostHealth:
    """The real health check: the instance, or the spot group, through boto3.

    Works on whatever endpoint botocore is configured with (the sandbox's too).
    """
    from mapt.core import OperationError, aws_session
    from mapt.targets.aws import host_health

    if status.region is None or status.spot is None:
        raise OperationError(
            f"the state of project {status.project!r} does not say where its host runs"
        )
    return host_health(
        aws_session(),
        project=status.project,
        region=status.region,
        address=status.host,
        spot=status.spot,
    )


@dataclass(frozen=True)
class HostServices:
    """The engine factory, the checks a create runs after each ``up``, the health
    check of a deployed host, and the wait for an interrupted spot host's replacement.

    ``setup`` None is the real delivery of secrets over SSH (``configure_host``).
    """

    engine: EngineFactory = pulumi_engine
    readiness: ReadinessCheck = ssh_readiness
    launch: LaunchCheck = auto_scaling_launch
    setup: HostSetupStep | None = None
    health: HealthCheck = aws_host_health
    replacement: ReplacementWait = auto_scaling_replacement
    instance_address: AddressLookup = ec2_instance_address

    def check_engine(self) -> None:
        """Check what the engine needs to change state (the Pulumi engine: its CLI).

        An engine handed in brings what it needs, so there is nothing to check for it.
        """
        if _is_pulumi_engine(self.engine):
            pulumi_cli_present()

    def reporting_to(self, progress: Progress) -> HostServices:
        """These services with the Pulumi engine's progress lines handed to ``progress``.

        Other engines report through the logs only, which ``reporting_progress`` covers.
        """
        if not _is_pulumi_engine(self.engine):
            return self
        from mapt.hosts._progress import ProgressStream

        # A TextIOBase is what TextIO names at run time; typeshed keeps the two apart.
        stream = cast(TextIO, ProgressStream(progress))
        return replace(self, engine=functools.partial(pulumi_engine, progress_stream=stream))

    def checks(self) -> HostChecks:
        """The checks a create runs after each ``up``, from these services."""
        from mapt.hosts._create import HostChecks

        return HostChecks(
            launch=self.launch,
            readiness=self.readiness,
            setup=self.setup,
            instance_address=self.instance_address,
        )


def _is_pulumi_engine(factory: EngineFactory) -> bool:
    """Whether ``factory`` makes the real Pulumi engine (itself, or with a progress stream)."""
    return factory is pulumi_engine or getattr(factory, "func", None) is pulumi_engine
