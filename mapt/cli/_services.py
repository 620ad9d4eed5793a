"""What commands act through: the stacks engine, the readiness check, the launch check.

The defaults are the real ones (the Pulumi engine, SSH readiness, the Auto Scaling
launch check). A caller that runs the CLI in-process can hand in others as the root
context object, e.g. ``CliRunner().invoke(app, args, obj=Services(...))``: this is how
whole create/destroy flows run in tests on the in-memory engine. The choice is an
explicit argument, never an environment switch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from mapt.stacks import Engine
    from mapt.targets import SshAccess
    from mapt.targets.aws import HostRequest, HostSetup

# Builds the engine for a run from --secrets-provider and --debug.
EngineFactory = Callable[[str | None, bool], "Engine"]
# Waits until the host answers over SSH; raises a MaptError when it does not.
ReadinessCheck = Callable[["SshAccess"], None]
# Confirms a spot group has a running instance: (region, group name) -> instance id.
LaunchCheck = Callable[[str, str], str]
# Hands a ready host its secrets: (access, request, the stack's outputs) -> what was done.
# None: nothing was delivered (the sandbox logs in to no machine).
HostSetupStep = Callable[["SshAccess", "HostRequest", "Mapping[str, Any]"], "HostSetup | None"]


def pulumi_engine(secrets_provider: str | None, debug: bool) -> Engine:
    """The real engine: the Pulumi CLI through the Automation API."""
    from mapt.stacks import PulumiEngine

    return PulumiEngine(secrets_provider=secrets_provider, debug=debug)


def pulumi_cli_present() -> None:
    """What the Pulumi engine needs to change state: its CLI, found and version-checked.

    Raises ``PrerequisiteError`` (exit 5). Reading state needs no CLI, so only
    commands about to change state check it, before any AWS call or lock.
    """
    from mapt.stacks import pulumi_command

    pulumi_command()


def ssh_readiness(access: SshAccess) -> None:
    """The real readiness check: SSH in and wait for cloud-init (40 min at most)."""
    from mapt.targets import DEFAULT_READY_TIMEOUT, wait_until_ready

    wait_until_ready(access, timeout=DEFAULT_READY_TIMEOUT)


def auto_scaling_launch(region: str, group_name: str) -> str:
    """The real launch check: the group's scaling activities, through boto3."""
    import boto3

    from mapt.targets.aws import verify_spot_launch

    return verify_spot_launch(boto3.Session(), region, group_name)


@dataclass(frozen=True)
class Services:
    """The engine factory and the checks a create runs after each ``up``.

    ``setup`` None is the real delivery of secrets over SSH (``configure_host``).
    """

    engine: EngineFactory = pulumi_engine
    readiness: ReadinessCheck = ssh_readiness
    launch: LaunchCheck = auto_scaling_launch
    setup: HostSetupStep | None = None

    def check_engine(self) -> None:
        """Check what the engine needs to change state (the Pulumi engine: its CLI).

        An engine handed in brings what it needs, so there is nothing to check for it.
        """
        if self.engine is pulumi_engine:
            pulumi_cli_present()


def services(
    ctx: typer.Context,
    *,
    sandbox: bool = False,
    region: str | None = None,
    backend_url: str | None = None,
) -> Services:
    """The services handed to the root command, or the real ones; or the sandbox's.

    ``sandbox`` (``--sandbox``) chooses the sandbox's services (``_sandbox``), after
    checking that the AWS endpoint is on the loopback; ``region`` and ``backend_url``
    are the run's.
    """
    if sandbox:
        from mapt.cli._sandbox import sandbox_services

        return sandbox_services(region=region, backend_url=backend_url)
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Services) else Services()
