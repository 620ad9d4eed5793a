"""The host lifecycle behind ``mapt aws host create|destroy|list``, without printing.

Each function takes validated requests and an explicit ``Engine`` and returns what
happened as a value; ``_host.py`` turns the values into text, JSON and exit codes.
Keeping the flow here, apart from flag parsing, lets it be driven on the in-memory
engine in tests exactly as the command drives it on Pulumi.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapt.core import (
    Interrupted,
    MaptError,
    NoCapacityError,
    OperationError,
    RunContext,
    get_logger,
)

if TYPE_CHECKING:
    import boto3

    from mapt.allocation import AllocationArgs, AllocationResult, FailedOffer
    from mapt.integrations.github import RegisteredRunner
    from mapt.stacks import DryRunEngine, Engine, LockHolder, PlannedStep, StackRef, StackSummary
    from mapt.targets import SshAccess
    from mapt.targets.aws import HostRequest, HostSetup

log = get_logger(__name__)

GET_AMI = "aws:ec2/getAmi:getAmi"
# How many spot deployments one create tries before giving up or falling back.
DEFAULT_SPOT_ATTEMPTS = 3
InvokeAnswer = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class CreateOutcome:
    """What a create did (or, on a dry run, would do).

    ``outputs`` are the host stack's plain outputs, secrets included: callers print
    only ``public_outputs``. ``planned`` lists the resources a dry run would create.
    ``on_demand_price`` is what an on-demand dry run found in the Pricing API, or None
    with ``price_unknown`` saying why.
    """

    allocation: AllocationResult
    outputs: Mapping[str, Any]
    files: tuple[Path, ...] = ()
    dry_run: bool = False
    planned: tuple[PlannedStep, ...] = ()
    images: tuple[Mapping[str, str], ...] = ()
    runner_name: str | None = None
    on_demand_price: float | None = None
    price_unknown: str | None = None

    @property
    def hourly_price(self) -> float | None:
        """USD/hour of the instance: the spot bid, or the on-demand price when known."""
        chosen = self.allocation
        return chosen.spot_price if chosen.is_spot else self.on_demand_price

    def public_outputs(self, secret_names: frozenset[str]) -> dict[str, Any]:
        return {k: v for k, v in self.outputs.items() if k not in secret_names}


def create_host(
    context: RunContext,
    args: AllocationArgs,
    request: HostRequest,
    *,
    engine: Engine,
    conn_dir: Path | None,
    checks: HostChecks,
    lock_timeout: float,
    max_attempts: int = DEFAULT_SPOT_ATTEMPTS,
    fallback_on_demand: bool = False,
) -> CreateOutcome:
    """Allocate, deploy the host stack, confirm the launch, wait for SSH, write files.

    The whole create holds the project lock, so two runs of one project never make
    two spot choices. A spot host whose group cannot launch (capacity, price) is
    destroyed and deployed again on the next kept candidate, up to ``max_attempts``
    deployments; then it falls back to on-demand when asked, or fails with every
    attempt listed. Any other failure, and an interruption (SIGINT, SIGTERM), keeps
    what was created in state and says how to remove it.
    """
    from mapt.allocation import allocation
    from mapt.stacks import project_lock

    with project_lock(
        context.backend_url, context.project_name, operation="create", timeout=lock_timeout
    ):
        allocated = False
        try:
            deployed = _deployed_outputs(context, engine)
            chosen = allocation(
                context, args, engine=engine, on_demand_zone=_deployed_zone(deployed)
            )
            allocated = True
            chosen, outputs = _deploy_with_failover(
                context,
                args,
                request,
                chosen,
                engine,
                checks,
                max_attempts,
                fallback_on_demand,
                deployed,
            )
            files: list[Path] = []
            if conn_dir is not None:
                from mapt.targets import write_connection_files
                from mapt.targets.aws import host_connection_values

                files = write_connection_files(conn_dir, host_connection_values(outputs))
        except SpotAttemptsExhaustedError:
            raise
        except MaptError as error:
            # A failed allocation created nothing; an interrupted one may have saved
            # the spot choice already.
            if allocated or isinstance(error, Interrupted):
                error.hint = _destroy_hint(context, error.hint)
            raise
    runner = request.runner.name if request.runner is not None else None
    return CreateOutcome(
        allocation=chosen, outputs=outputs, files=tuple(files), runner_name=runner
    )


@dataclass(frozen=True)
class HostChecks:
    """The checks after each ``up``: the spot launch, then SSH readiness; then the setup.

    ``setup`` hands a ready host its secrets (``None``: the real delivery over SSH,
    ``mapt.targets.aws.configure_host``); it gets the request and the stack's outputs.
    """

    launch: Callable[[str, str], str]
    readiness: Callable[[SshAccess], None]
    setup: Callable[[SshAccess, HostRequest, Mapping[str, Any]], HostSetup | None] | None = None

    def setup_for(
        self, request: HostRequest
    ) -> Callable[[SshAccess, Mapping[str, Any]], HostSetup | None] | None:
        setup = self.setup
        if setup is None:
            return None
        return lambda access, outputs: setup(access, request, outputs)

    def after_up(self, offer: AllocationResult, group_name: str) -> Callable[[SshAccess], None]:
        """The wait for one deployment: a spot group must launch before SSH can answer."""

        def wait(access: SshAccess) -> None:
            if offer.is_spot:
                self.launch(offer.region, group_name)
            self.readiness(access)

        return wait


class SpotAttemptsExhaustedError(NoCapacityError):
    """Every spot offer tried could not launch, and on-demand was not allowed."""

    def __init__(self, failed: Sequence[FailedOffer]) -> None:
        self.failed = tuple(failed)
        tried = "; ".join(
            f"{f.offer.availability_zone} ({', '.join(f.offer.instance_types[:3])}): {f.reason}"
            for f in failed
        )
        super().__init__(
            f"spot capacity could not launch after {len(failed)} attempt(s): {tried}",
            hint="Retry later, widen the request (--spot-eviction-tolerance, "
            "--compute-families), or pass --spot-fallback-on-demand.",
        )


def _deployed_outputs(context: RunContext, engine: Engine) -> dict[str, Any] | None:
    """The outputs of the project's host stack, None when there is none (a first run)."""
    from mapt.stacks import StackRef
    from mapt.targets.aws import HOST_STACK

    ref = StackRef.for_context(context, HOST_STACK)
    return engine.outputs(ref) if engine.exists(ref) else None


def _deployed_zone(deployed: Mapping[str, Any] | None) -> str | None:
    """The zone the project's on-demand host runs in, for a re-run to keep it there.

    Moving it would replace its subnet and machine (and the new subnet's address range
    clashes with the old one's in the same VPC, so the re-run would fail half-way).
    """
    from mapt.targets.aws import OUTPUT_AVAILABILITY_ZONE, OUTPUT_SPOT

    zone = (deployed or {}).get(OUTPUT_AVAILABILITY_ZONE)
    on_demand = (deployed or {}).get(OUTPUT_SPOT) is False
    return zone if on_demand and isinstance(zone, str) else None


def _deploy_with_failover(
    context: RunContext,
    args: AllocationArgs,
    request: HostRequest,
    chosen: AllocationResult,
    engine: Engine,
    checks: HostChecks,
    max_attempts: int,
    fallback_on_demand: bool,
    deployed: Mapping[str, Any] | None,
) -> tuple[AllocationResult, dict[str, Any]]:
    from mapt.allocation import (
        FailedOffer,
        fail_over,
        keep_on_demand_fallback,
        on_demand_allocation,
    )
    from mapt.stacks import StackRef
    from mapt.targets.aws import (
        HOST_STACK,
        SpotLaunchError,
        deploy_host,
        host_group_name,
        recorded_setup,
    )

    ref = StackRef.for_context(context, HOST_STACK)
    # A re-run keeps what an earlier delivery recorded until it has delivered again.
    recorded = recorded_setup(deployed) if deployed is not None else None
    deployments = 0
    while True:
        current = chosen
        deployments += 1
        try:
            outputs = deploy_host(
                context,
                current,
                request,
                up=lambda program: engine.up(ref, program, refresh=engine.exists(ref)),
                wait=checks.after_up(current, host_group_name(context)),
                setup=checks.setup_for(request),
                recorded=recorded,
            )
            return current, outputs
        except SpotLaunchError as error:
            if not error.capacity_failure:
                # The request itself is wrong (an image, a quota, a parameter): no other
                # offer would launch either, and it is not a capacity problem (exit 1).
                raise OperationError(error.message, hint=error.hint) from error
            log.warning("%s; destroying the host stack to try elsewhere", error.message)
            engine.destroy(ref)
            failed = (*current.failed, FailedOffer(current.offer, error.reason_code))
            following = fail_over(context, current, error.reason_code, engine=engine)
            if following is not None and deployments < max_attempts:
                chosen = following
                continue
            if not fallback_on_demand:
                raise SpotAttemptsExhaustedError(failed) from error
            region = failed[0].offer.region
            log.warning("falling back to on-demand capacity in %s", region)
            on_demand = on_demand_allocation(args, region)
            chosen = keep_on_demand_fallback(
                context, replace(on_demand, failed=failed), engine=engine
            )


def dry_run_host(
    context: RunContext,
    args: AllocationArgs,
    request: HostRequest,
    *,
    engine: DryRunEngine,
    session: boto3.Session,
) -> CreateOutcome:
    """The real allocation (read-only EC2 calls) and the host program under mocks.

    A spot choice already saved is read, not re-made; a new one is shown but kept
    nowhere. State is read through ``engine``'s reader as ``host list`` reads it, so
    no Pulumi CLI, passphrase, lock or workspace is needed and nothing is written.
    Image lookups are answered from the real ``DescribeImages`` of the chosen region,
    so a dry run fails where a real run would on a missing image. On demand, the
    hourly price comes from the Pricing API (or is unknown, with the reason).
    """
    from mapt.allocation import allocation, on_demand_hourly_price
    from mapt.stacks import StackRef
    from mapt.targets.aws import HOST_STACK, host_phases, host_program

    chosen = allocation(context, args, engine=engine, keep=False)
    on_demand_price, price_unknown = None, None
    if not chosen.is_spot:
        on_demand_price, price_unknown = on_demand_hourly_price(
            chosen, args.ami_product_description, session=session
        )
    images: list[dict[str, str]] = []
    engine.answer(GET_AMI, image_answer(session, chosen.region, found=images))
    ref = StackRef.for_context(context, HOST_STACK)
    planned: list[PlannedStep] = []
    outputs: dict[str, Any] = {}
    for phase in host_phases(request):
        preview = engine.preview(ref, host_program(context, chosen, request, phase=phase))
        known = {(step.type, step.name) for step in planned}
        planned += [step for step in preview.steps if (step.type, step.name) not in known]
        outputs = engine.last_run.plain_outputs()
    unique = {image["id"]: image for image in images}
    return CreateOutcome(
        allocation=chosen,
        outputs=outputs,
        dry_run=True,
        planned=tuple(planned),
        images=tuple(unique.values()),
        runner_name=request.runner.name if request.runner is not None else None,
        on_demand_price=on_demand_price,
        price_unknown=price_unknown,
    )


def image_answer(
    session: boto3.Session, region: str, *, found: list[dict[str, str]] | None = None
) -> InvokeAnswer:
    """Answer ``aws.ec2.getAmi`` as the provider would: the newest matching image.

    Each image found is appended to ``found`` (id, name, region), for the dry run's report.
    """

    from mapt.targets.aws import ami_answer

    def answer(invoke_args: Mapping[str, Any]) -> dict[str, Any]:
        client = session.client("ec2", region_name=region)
        image = ami_answer(client, region, invoke_args)
        if found is not None:
            found.append({"id": image["id"], "name": image["name"], "region": region})
        return image

    return answer


@dataclass(frozen=True)
class DestroyOutcome:
    """Which stacks were destroyed, which locks removed, which state files purged."""

    destroyed: tuple[str, ...]
    unlocked: tuple[str, ...] = ()
    purged: tuple[str, ...] = ()
    broken_lock: LockHolder | None = None
    runner: str | None = None  # what happened to the project's GitHub runner

    @property
    def nothing_to_destroy(self) -> bool:
        return not self.destroyed


def destroy_host(
    context: RunContext,
    *,
    engine: Engine,
    force: bool,
    keep_state: bool,
    lock_timeout: float,
    deregister: Callable[[RegisteredRunner | None], str | None] | None = None,
    prerequisites: Callable[[], None] | None = None,
) -> DestroyOutcome:
    """Destroy the host stack, then ``spotOption-<project>``, then the project's state.

    A stack that does not exist is skipped, so destroying twice, or a project that
    never existed, succeeds. Whether the project has any stack is read from the state
    first (``list_stacks``, as ``host list`` reads it): a project without one is
    nothing to destroy, found without ``prerequisites`` (the engine's, e.g. the Pulumi
    CLI) or a lock; only leftovers of an earlier ``keep_state`` destroy are purged, so
    a project that never existed writes nothing. Otherwise ``prerequisites`` run
    before the lock is taken. ``force`` first removes the locks dead runs left: the
    project lock (saying whose it was and since when) and the stacks' Pulumi locks.

    The GitHub runner the host stack recorded (its scope and id) is read before the
    stack goes and handed to ``deregister`` after (GitHub refuses to remove a runner
    that is running a job); a project without that record hands ``None``, so no
    runner is ever removed that this project did not register.
    """
    from mapt.allocation import SPOT_STACK_NAME
    from mapt.stacks import StackRef, break_project_lock, project_lock
    from mapt.targets.aws import HOST_STACK

    project = context.project_name
    if not force and not any(
        summary.project == project for summary in engine.list_stacks(context.backend_url)
    ):
        log.info("project %s has no stacks; nothing to destroy", context.project_name)
        # What a --keep-state destroy kept can still go: read, then removed if any.
        leftovers = [] if keep_state else engine.purge_project_state(context.backend_url, project)
        # No host stack, so no runner record: ``deregister`` says none is removed.
        note = deregister(None) if deregister is not None else None
        return DestroyOutcome((), purged=tuple(leftovers), runner=note)
    if prerequisites is not None:
        prerequisites()
    broken = None
    registered: RegisteredRunner | None = None
    if force:
        broken = break_project_lock(context.backend_url, context.project_name)
        if broken is not None:
            log.warning("removed the project lock held by %s", broken.describe())
    destroyed: list[str] = []
    unlocked: list[str] = []
    with (
        project_lock(
            context.backend_url, context.project_name, operation="destroy", timeout=lock_timeout
        ),
        _destroy_hint_on_interrupt(context),
    ):
        for name in (HOST_STACK, SPOT_STACK_NAME):
            ref = StackRef.for_context(context, name)
            if force:
                removed = engine.force_unlock(ref)
                for entry in removed:
                    log.warning("removed the lock %s of stack %s", entry, ref.stack_name)
                unlocked += removed
            if name == HOST_STACK:
                registered = _registered_runner(engine, ref)
            if engine.destroy(ref):
                destroyed.append(ref.stack_name)
        purged: list[str] = []
        if not keep_state:
            purged = engine.purge_project_state(context.backend_url, context.project_name)
    note = deregister(registered) if deregister is not None else None
    return DestroyOutcome(tuple(destroyed), tuple(unlocked), tuple(purged), broken, note)


def _registered_runner(engine: Engine, ref: StackRef) -> RegisteredRunner | None:
    """The runner the host stack recorded (``runner_id`` in ``runner_scope``), if any.

    A record that cannot be read is an error, never taken for "no runner".
    """
    from mapt.core import InputError
    from mapt.integrations.github import RegisteredRunner, RunnerScope, runner_name
    from mapt.targets.aws import OUTPUT_RUNNER_ID, OUTPUT_RUNNER_SCOPE

    if not engine.exists(ref):
        return None
    outputs = engine.outputs(ref)
    runner_id, scope = outputs.get(OUTPUT_RUNNER_ID), outputs.get(OUTPUT_RUNNER_SCOPE)
    if runner_id is None and scope is None:
        return None
    try:
        if not isinstance(runner_id, int) or isinstance(runner_id, bool):
            raise InputError(f"runner id {runner_id!r} is not a number")
        return RegisteredRunner(
            RunnerScope.from_api_path(str(scope)), runner_id, runner_name(ref.project)
        )
    except InputError as error:
        raise OperationError(
            f"the runner recorded in stack {ref.stack_name} cannot be read: {error.message}"
        ) from error


@dataclass(frozen=True)
class HostSummary:
    """One project in a backend, as ``mapt aws host list`` shows it.

    ``unreadable`` lists the project's state entries that could not be read, as
    (location, reason): the project exists, but what it holds is unknown. ``project``
    is empty for an unreadable legacy-layout file (only its contents name the project).
    """

    project: str
    stacks: tuple[str, ...]
    region: str | None = None
    availability_zone: str | None = None
    instance_types: tuple[str, ...] = ()
    spot: bool | None = None
    host: str | None = None
    updated_at: datetime | None = None
    locked: bool = False
    # What the host waits for after boot, and the instance mapt delivered it to (None:
    # not yet, e.g. a failed delivery). A spot replacement launched later is another
    # instance than this one and has nothing (see specs/concepts/targets.md, Secrets).
    awaited_secrets: tuple[str, ...] = ()
    configured_instance: str | None = None

    @property
    def secrets_state(self) -> str:
        """``-`` (none needed), ``awaiting`` or ``delivered to i-...``."""
        if not self.awaited_secrets:
            return "-"
        if self.configured_instance is None:
            return "awaiting"
        return f"delivered to {self.configured_instance}"

    unreadable: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stacks": list(self.stacks),
            "region": self.region,
            "availability_zone": self.availability_zone,
            "instance_types": list(self.instance_types),
            "spot": self.spot,
            "host": self.host,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "locked": self.locked,
            "awaited_secrets": list(self.awaited_secrets),
            "configured_instance": self.configured_instance,
            "unreadable": [
                {"location": location, "reason": reason} for location, reason in self.unreadable
            ],
        }


def list_hosts(engine: Engine, backend_url: str | None) -> list[HostSummary]:
    """Every project in the backend with where its host runs, from state alone.

    The host stack's outputs come first; a project with only a spot choice (created
    but not deployed, or a failed deploy) shows the choice. A project whose state
    cannot be read is listed with why (``HostSummary.unreadable``), never left out.
    """
    by_project: dict[str, list[StackSummary]] = {}
    for summary in engine.list_stacks(backend_url):
        by_project.setdefault(summary.project, []).append(summary)
    return [_host_summary(project, stacks) for project, stacks in sorted(by_project.items())]


def _host_summary(project: str, summaries: Sequence[StackSummary]) -> HostSummary:
    from mapt.targets.aws import HOST_STACK

    stacks = [s for s in summaries if s.unreadable is None]
    merged: dict[str, Any] = {}
    # Spot choice first, so the host stack's own outputs win where both have a value.
    for summary in sorted(stacks, key=lambda s: s.kind == HOST_STACK):
        merged.update(summary.outputs)
    az = merged.get("availability_zone", merged.get("az"))
    types = merged.get("instance_types") or ()
    spot = merged.get("spot")
    if spot is None and any(s.kind != HOST_STACK for s in stacks):
        spot = True  # only spot runs keep a spotOption stack
    times = [s.updated_at for s in stacks if s.updated_at is not None]
    return HostSummary(
        project=project,
        stacks=tuple(s.stack_name for s in summaries if s.stack_name),
        region=merged.get("region"),
        availability_zone=az,
        instance_types=tuple(str(t) for t in types),
        spot=spot,
        host=merged.get("host"),
        updated_at=max(times) if times else None,
        locked=any(s.locks for s in summaries),
        awaited_secrets=tuple(str(a) for a in merged.get("awaited_secrets") or ()),
        configured_instance=merged.get("configured_instance"),
        unreadable=tuple(
            (s.location, s.unreadable) for s in summaries if s.unreadable is not None
        ),
    )


@contextmanager
def _destroy_hint_on_interrupt(context: RunContext) -> Iterator[None]:
    """An interrupted destroy says how to finish it."""
    try:
        yield
    except Interrupted as error:
        error.hint = _destroy_hint(context, error.hint)
        raise


def _destroy_hint(context: RunContext, hint: str | None) -> str:
    command = f"mapt aws host destroy --project-name {context.project_name}"
    if context.backend_url:
        command += f" --backed-url {context.backend_url}"
    created = f"What was created so far is kept in state; remove it with: {command}"
    return f"{hint.rstrip('.')}. {created}" if hint else created
