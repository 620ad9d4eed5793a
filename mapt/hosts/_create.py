"""Create a host: allocate, deploy with failover, confirm the launch, wait, set it up.

Each function takes validated requests and an explicit ``Engine`` and returns what
happened as a ``HostRecord``; nothing here prints. ``create_host`` is the whole create
(and, with ``reuse_choice`` False, a resize); ``dry_run_host`` the same choice and
programs under mocks, creating nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
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
from mapt.hosts._destroy import destroy_hint
from mapt.hosts._records import HostRecord
from mapt.hosts._requests import DEFAULT_SPOT_ATTEMPTS

if TYPE_CHECKING:
    import boto3

    from mapt.allocation import AllocationArgs, AllocationResult, FailedOffer
    from mapt.hosts._replacement import ReplacementPlan
    from mapt.hosts._services import AddressLookup, HostSetupStep, LaunchCheck, ReadinessCheck
    from mapt.integrations.github import RegisteredRunner
    from mapt.stacks import DryRunEngine, Engine, PlannedStep
    from mapt.targets import SshAccess
    from mapt.targets.aws import HostRequest, HostSetup, LaunchedInstance

log = get_logger(__name__)

GET_AMI = "aws:ec2/getAmi:getAmi"
InvokeAnswer = Callable[[Mapping[str, Any]], dict[str, Any]]
# Removes a runner the host stack recorded that the host no longer runs; says what it did.
RetireRunner = Callable[["RegisteredRunner"], "str | None"]


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
    reuse_choice: bool = True,
    replaced: Sequence[str] = (),
    move: ReplacementPlan | None = None,
    retire_runner: RetireRunner | None = None,
    secrets_provider: str | None = None,
) -> HostRecord:
    """Allocate, deploy the host stack, confirm the launch, wait for SSH, write files.

    The whole create holds the project lock, so two runs of one project never make
    two spot choices. A spot host whose group cannot launch (capacity, price) is
    destroyed and deployed again on the next kept candidate, up to ``max_attempts``
    deployments; then it falls back to on-demand when asked, or fails with every
    attempt listed. Any other failure, and an interruption (SIGINT, SIGTERM), keeps
    what was created in state and says how to remove it.

    ``reuse_choice`` False (a resize) makes a new spot choice for ``args`` even when
    one is kept, replaces the kept one with it, and moves the host there.
    ``replaced`` names host stack resources the first ``up`` replaces although they
    are unchanged (``Engine.up``'s ``replace``: a new address). ``move`` (an
    interrupted spot host's plan that leaves its place) records the kept offer as
    failed for its reason and deploys on the next choice, as after a refused launch.

    A host with a runner whose machine was replaced (a spot replacement, a recovery, a
    failover) registers a new runner on the new machine (its ``.runner`` file is gone,
    so the delivery registers with this run's fresh token); the runner the stack
    recorded before is then handed to ``retire_runner`` (removed by its id), and the
    new one's id is what the stack records. The same machine keeps its runner and id.

    ``secrets_provider`` is the one ``engine`` was made with, named again in the
    destroy command a failed create prints.
    """
    from mapt.allocation import allocation
    from mapt.hosts._destroy import registered_runner
    from mapt.stacks import StackRef, project_lock
    from mapt.targets.aws import HOST_STACK, OUTPUT_RUNNER_ID

    operation = "create" if reuse_choice else "resize"
    with project_lock(
        context.backend_url, context.project_name, operation=operation, timeout=lock_timeout
    ):
        allocated = False
        # Read before anything changes: unreadable is an error, never "no runner".
        previous = registered_runner(engine, StackRef.for_context(context, HOST_STACK))
        try:
            prefer = _running_on_demand_zone(context, engine) if reuse_choice else None
            chosen = allocation(
                context, args, engine=engine, reuse=reuse_choice, prefer_zone=prefer
            )
            allocated = True
            if move is not None and move.move_reason is not None and chosen.is_spot:
                chosen = _leave_kept_offer(
                    context, args, chosen, move, engine, fallback_on_demand=fallback_on_demand
                )
            chosen, outputs = _deploy_with_failover(
                context,
                args,
                request,
                chosen,
                engine,
                checks,
                max_attempts,
                fallback_on_demand,
                replaced,
            )
            if (
                previous is not None
                and request.runner is not None
                and retire_runner is not None
                and outputs.get(OUTPUT_RUNNER_ID) != previous.runner_id
            ):
                # The old machine's runner is offline for good (its machine is gone).
                retire_runner(previous)
            files: list[Path] = []
            if conn_dir is not None:
                from mapt.targets import write_connection_files
                from mapt.targets.aws import CONNECTION_OUTPUTS, host_connection_values

                files = write_connection_files(
                    conn_dir, host_connection_values(outputs), known=CONNECTION_OUTPUTS
                )
        except SpotAttemptsExhaustedError:
            raise
        except MaptError as error:
            # A failed allocation created nothing; an interrupted one may have saved
            # the spot choice already.
            if allocated or isinstance(error, Interrupted):
                error.hint = destroy_hint(context, error.hint, secrets_provider)
            raise
    return HostRecord(
        project=context.project_name,
        allocation=chosen,
        outputs=outputs,
        files=tuple(files),
        runner_name=request.runner.name if request.runner is not None else None,
        expires_at=request.expires_at,
    )


def _running_on_demand_zone(context: RunContext, engine: Engine) -> str | None:
    """The zone the project's on-demand host runs in (its stack says), in the run's region.

    A re-run of an on-demand create keeps it there: in another zone its subnet, and so
    the host, would be replaced.
    """
    from mapt.stacks import StackRef
    from mapt.targets.aws import HOST_STACK, OUTPUT_AVAILABILITY_ZONE, OUTPUT_REGION, OUTPUT_SPOT

    ref = StackRef.for_context(context, HOST_STACK)
    if not engine.exists(ref):
        return None
    outputs = engine.outputs(ref)
    zone = outputs.get(OUTPUT_AVAILABILITY_ZONE)
    on_demand_here = outputs.get(OUTPUT_SPOT) is False and (
        outputs.get(OUTPUT_REGION) == context.resolved_region()
    )
    return zone if on_demand_here and isinstance(zone, str) and zone else None


@dataclass(frozen=True)
class HostChecks:
    """The checks after each ``up``: the spot launch, then SSH readiness; then the setup.

    ``setup`` hands a ready host its secrets (``None``: the real delivery over SSH,
    ``mapt.targets.aws.configure_host``); it gets the request and the stack's outputs.
    ``instance_address`` reads the launched instance's public address, for a spot host
    without a load balancer (its address and name point there).
    """

    launch: LaunchCheck
    readiness: ReadinessCheck
    setup: HostSetupStep | None = None
    instance_address: AddressLookup | None = None

    def setup_for(
        self, request: HostRequest
    ) -> Callable[[SshAccess, Mapping[str, Any]], HostSetup | None] | None:
        setup = self.setup
        if setup is None:
            return None
        return lambda access, outputs: setup(access, request, outputs)

    def after_up(
        self, offer: AllocationResult, group_name: str, *, launch_confirmed: bool = False
    ) -> Callable[[SshAccess], None]:
        """The wait for one deployment: a spot group must launch before SSH can answer.

        ``launch_confirmed``: ``launched`` confirmed it already (no load balancer).
        """

        def wait(access: SshAccess) -> None:
            if offer.is_spot and not launch_confirmed:
                self.launch(offer.region, group_name)
            self.readiness(access)

        return wait

    def launched(self, offer: AllocationResult, group_name: str) -> Callable[[], LaunchedInstance]:
        """The launch check of a spot group, then its instance's public address."""

        def launched() -> LaunchedInstance:
            from mapt.hosts._services import ec2_instance_address

            instance_id = self.launch(offer.region, group_name)
            lookup = self.instance_address or ec2_instance_address
            return lookup(offer.region, instance_id)

        return launched


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


def _deploy_with_failover(
    context: RunContext,
    args: AllocationArgs,
    request: HostRequest,
    chosen: AllocationResult,
    engine: Engine,
    checks: HostChecks,
    max_attempts: int,
    fallback_on_demand: bool,
    replaced: Sequence[str] = (),
) -> tuple[AllocationResult, dict[str, Any]]:
    from mapt.stacks import StackRef
    from mapt.targets.aws import (
        HOST_STACK,
        SpotLaunchError,
        deploy_host,
        host_group_name,
        recorded_instance,
        recorded_setup,
    )

    ref = StackRef.for_context(context, HOST_STACK)
    # A re-run keeps what an earlier delivery recorded until it has delivered again, and
    # the instance a name points at until the launch check names the current one.
    before = engine.outputs(ref) if engine.exists(ref) else {}
    recorded = recorded_setup(before)
    pointed_at = recorded_instance(before)
    deployments = 0
    # Replaced once, by the first `up` (a later one, recording the setup, keeps it).
    to_replace = list(replaced)

    def up(program: Callable[[], None]) -> Mapping[str, Any]:
        replacing = tuple(to_replace)
        to_replace.clear()
        return engine.up(ref, program, refresh=engine.exists(ref), replace=replacing)

    while True:
        current = chosen
        deployments += 1
        group = host_group_name(context)
        pinned = current.is_spot and not request.load_balanced(True)
        try:
            outputs = deploy_host(
                context,
                current,
                request,
                up=up,
                wait=checks.after_up(current, group, launch_confirmed=pinned),
                setup=checks.setup_for(request),
                recorded=recorded,
                launched=checks.launched(current, group) if pinned else None,
                recorded_instance=pointed_at,
            )
            return current, outputs
        except SpotLaunchError as error:
            if not error.capacity_failure:
                # The request itself is wrong (an image, a quota, a parameter): no other
                # offer would launch either, and it is not a capacity problem (exit 1).
                raise OperationError(error.message, hint=error.hint) from error
            log.warning("%s; destroying the host stack to try elsewhere", error.message)
            engine.destroy(ref)
            pointed_at = None  # the next offer's stack starts empty
            chosen = _next_choice(
                context,
                args,
                current,
                error.reason_code,
                engine,
                attempts_left=deployments < max_attempts,
                fallback_on_demand=fallback_on_demand,
            )


def _leave_kept_offer(
    context: RunContext,
    args: AllocationArgs,
    kept: AllocationResult,
    move: ReplacementPlan,
    engine: Engine,
    *,
    fallback_on_demand: bool,
) -> AllocationResult:
    """Destroy the host stack on ``kept`` (an interrupted spot host's place) and choose
    where it goes next (``_next_choice``, for the plan's reason)."""
    from mapt.stacks import StackRef
    from mapt.targets.aws import HOST_STACK

    reason = str(move.move_reason)
    log.warning(
        "leaving %s (%s): destroying the host stack to deploy elsewhere",
        kept.availability_zone,
        reason,
    )
    ref = StackRef.for_context(context, HOST_STACK)
    if engine.exists(ref):
        engine.destroy(ref)
    return _next_choice(
        context,
        args,
        kept,
        reason,
        engine,
        attempts_left=True,
        fallback_on_demand=fallback_on_demand,
        avoid_regions=move.avoid_regions,
        on_demand=move.on_demand,
    )


def _next_choice(
    context: RunContext,
    args: AllocationArgs,
    current: AllocationResult,
    reason: str,
    engine: Engine,
    *,
    attempts_left: bool,
    fallback_on_demand: bool,
    avoid_regions: Sequence[str] = (),
    on_demand: bool = False,
) -> AllocationResult:
    """Where a host goes after ``current`` could not run it (AWS's ``reason``).

    The next spot candidate outside ``avoid_regions``, kept by ``fail_over``, while
    ``attempts_left``; else on demand in the first failed offer's region when
    ``fallback_on_demand``; else ``SpotAttemptsExhaustedError`` listing every failed
    offer. ``on_demand`` goes to on demand at once. Either way the spot stack records
    ``current`` among the failed offers.
    """
    from mapt.allocation import (
        FailedOffer,
        fail_over,
        keep_on_demand_fallback,
        on_demand_allocation,
    )

    failed = (*current.failed, FailedOffer(current.offer, reason))
    if not on_demand:
        following = fail_over(context, current, reason, engine=engine, avoid_regions=avoid_regions)
        if following is not None and attempts_left:
            return following
        if not fallback_on_demand:
            raise SpotAttemptsExhaustedError(failed)
    region = failed[0].offer.region
    log.warning("falling back to on-demand capacity in %s", region)
    fallback = on_demand_allocation(args, region)
    return keep_on_demand_fallback(context, replace(fallback, failed=failed), engine=engine)


def dry_run_host(
    context: RunContext,
    args: AllocationArgs,
    request: HostRequest,
    *,
    engine: DryRunEngine,
    session: boto3.Session,
) -> HostRecord:
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
    return HostRecord(
        project=context.project_name,
        allocation=chosen,
        outputs=outputs,
        dry_run=True,
        planned=tuple(planned),
        images=tuple(unique.values()),
        runner_name=request.runner.name if request.runner is not None else None,
        expires_at=request.expires_at,
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
