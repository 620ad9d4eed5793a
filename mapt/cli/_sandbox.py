"""``--sandbox``: the services of a run on an AWS-compatible endpoint on the loopback.

A sandbox run deploys the same programs, but through the sandbox engine
(``mapt.stacks.SandboxEngine`` with ``mapt.targets.aws.SANDBOX_KINDS``), which makes
every resource on the endpoint botocore is configured with (moto on 127.0.0.1) and
writes real checkpoint files. It starts only when that endpoint is on 127.0.0.0/8 or
::1 (``check_sandbox_endpoint``), and says on stderr that it is a sandbox.

Readiness is the machine's state in the endpoint, not SSH: the instance at the host's
address is running, and a spot host's group has its instance in service (the launch
check, as on AWS); an interrupted spot host's replacement is waited for as on AWS.
Nothing logs in to a sandbox machine, so no secret is delivered:
flags that would register a GitHub runner or a RHEL subscription are refused (exit 2),
and a Windows host's password is not set (one line says so; ``host list`` shows its
secrets as ``awaiting``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import typer

from mapt.cli._services import Services

if TYPE_CHECKING:
    from datetime import datetime

    from mapt.stacks import Engine
    from mapt.targets import SshAccess
    from mapt.targets.aws import GroupReplacement, HostRequest, HostSetup

# How often the sandbox asks the endpoint whether the spot group's instance is in service.
_LAUNCH_POLL = 1.0


def sandbox_services(
    *, region: str | None, backend_url: str | None, any_backend: bool = False
) -> Services:
    """The sandbox's services, once the endpoint is checked to be on the loopback.

    ``region`` is where an on-demand host is looked for (the run's region; None: the
    session's); ``backend_url`` adds S3 to the services checked when the state is in
    S3, and ``any_backend`` (``mapt serve``, whose hosts each name their own) always.
    Raises ``InputError`` (exit 2) before anything is called when the endpoint is not
    local. The services pickle (the server hands them to its worker processes).
    """
    from mapt.core import aws_session

    session = aws_session()
    enter_sandbox(session, "s3://" if any_backend else backend_url)
    checks = _EndpointChecks(session, region or session.region_name or "us-east-1")
    return Services(
        engine=_sandbox_engine,
        readiness=checks.readiness,
        launch=checks.launch,
        setup=_no_delivery,
        replacement=checks.replacement,
    )


def enter_sandbox(session: Any, backend_url: str | None) -> None:
    """Check that every service a sandbox run calls is local, and say it is a sandbox.

    Those are what the sandbox kinds call (EC2, Auto Scaling, ELBv2, Route53, and SQS
    and EventBridge for the service's event intake), and S3 when the state is there.
    ``InputError`` (exit 2) naming the variable and its value if not.
    """
    from mapt.targets.aws import SANDBOX_SERVICES, check_sandbox_endpoint

    services: tuple[str, ...] = SANDBOX_SERVICES
    if backend_url is not None and backend_url.startswith("s3://"):
        services = (*services, "s3")
    endpoint = check_sandbox_endpoint(session, services)
    typer.echo(f"Sandbox: every AWS call goes to {endpoint}, never to AWS.", err=True)


def _sandbox_engine(secrets_provider: str | None, debug: bool) -> Engine:
    from mapt.stacks import SandboxEngine
    from mapt.targets.aws import SANDBOX_INVOKES, SANDBOX_KINDS

    return SandboxEngine(SANDBOX_KINDS, SANDBOX_INVOKES, secrets_provider=secrets_provider)


class _EndpointChecks:
    """Launch and readiness from the endpoint's state, for one run.

    The launch check is the real one (the group's scaling activities and instances);
    readiness looks in the region the last launch check confirmed (a spot host), or
    else where the address is, the run's region first (an on-demand host).
    """

    def __init__(self, session: Any, region: str) -> None:
        self._session = session
        self._region = region
        self._launched_in: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        """A worker process gets the region, and makes its own session (they do not pickle)."""
        return {"region": self._region}

    def __setstate__(self, state: dict[str, Any]) -> None:
        from mapt.core import aws_session

        self._session = aws_session()
        self._region = state["region"]
        self._launched_in = None

    def launch(self, region: str, group_name: str) -> str:
        from mapt.targets.aws import verify_spot_launch

        self._launched_in = None
        instance = verify_spot_launch(self._session, region, group_name, poll_interval=_LAUNCH_POLL)
        self._launched_in = region
        return instance

    def replacement(
        self,
        region: str,
        group_name: str,
        interrupted: str,
        since: datetime,
        timeout: float,
        abandon: Callable[[], bool] | None,
    ) -> GroupReplacement | None:
        """The real wait for an interrupted instance's replacement, asked every second."""
        from mapt.targets.aws import wait_for_replacement

        return wait_for_replacement(
            self._session,
            region,
            group_name,
            interrupted,
            since=since,
            timeout=timeout,
            poll_interval=_LAUNCH_POLL,
            abandon=abandon,
        )

    def readiness(self, access: SshAccess) -> None:
        from mapt.targets.aws import region_of_address, wait_until_running

        region = self._launched_in or region_of_address(
            self._session, access.target.host, first=self._region
        )
        if access.bastion is not None:
            wait_until_running(self._session, region, access.bastion.host, behind_balancer=False)
        wait_until_running(
            self._session,
            region,
            access.target.host,
            behind_balancer=self._launched_in is not None,
        )


def _no_delivery(
    _access: SshAccess, request: HostRequest, _outputs: Mapping[str, Any]
) -> HostSetup | None:
    """Nothing logs in to a sandbox machine: say what it is not given."""
    typer.echo(
        f"Sandbox: {', '.join(request.awaited_secrets)} not delivered (no SSH in the sandbox).",
        err=True,
    )
    return None
