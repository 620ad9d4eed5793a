"""The AWS host target: its stack name, program(s), outputs, connection files, readiness.

This is the whole interface ``mapt.hosts`` uses to create a host:

1. ``host_stack_name(ctx)`` names the stack (``host-<project>``);
2. ``deploy_host(ctx, allocation, request, up=...)`` runs the program of every phase
   through the engine the caller hands in (one phase; two when air-gapped), waits
   for the machine to be ready after each, hands it its secrets over SSH after the
   first (``_setup.configure_host``) and records in the stack which machine got them;
3. ``host_connection_values(outputs)`` picks the outputs that become connection files,
   for ``mapt.targets.write_connection_files``.

A spot host's ``up`` returns once its Auto Scaling group exists; the caller then
waits for the instance with ``verify_spot_launch`` on the group ``host_group_name``
names (also exported as the ``asg_name`` output).

``host_program`` gives one phase's program for callers that drive the engine
themselves (``--dry-run``, destroy). Nothing here imports ``pulumi`` or ``pulumi_aws``
at module level; the program imports them when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mapt.allocation import AllocationResult
from mapt.core import InputError, MaptError, OperationError, RunContext, get_logger
from mapt.targets._readiness import DEFAULT_READY_TIMEOUT, SshAccess, SshEndpoint, wait_until_ready
from mapt.targets.aws._dns import LaunchedInstance
from mapt.targets.aws._request import HostRequest
from mapt.targets.aws._setup import HostSetup

if TYPE_CHECKING:
    from mapt.stacks import StackRef

log = get_logger(__name__)

HOST_STACK = "host"

# Output names, which are also the connection file names the Go mapt writes.
OUTPUT_HOST = "host"
OUTPUT_USERNAME = "username"
OUTPUT_PRIVATE_KEY = "id_rsa"
OUTPUT_PASSWORD = "userpassword"
OUTPUT_BASTION_HOST = "bastion_host"
OUTPUT_BASTION_USERNAME = "bastion_username"
OUTPUT_BASTION_PRIVATE_KEY = "bastion_id_rsa"
# A host with a stable name (``--dns-zone``): its record's name, and the connection
# file that keeps the address it points at (the ``host`` file holds the name).
OUTPUT_DNS_NAME = "dns_name"
CONNECTION_ADDRESS = "address"
CONNECTION_OUTPUTS = (
    OUTPUT_HOST,
    CONNECTION_ADDRESS,
    OUTPUT_USERNAME,
    OUTPUT_PRIVATE_KEY,
    OUTPUT_PASSWORD,
    OUTPUT_BASTION_HOST,
    OUTPUT_BASTION_USERNAME,
    OUTPUT_BASTION_PRIVATE_KEY,
)
SECRET_OUTPUTS = frozenset({OUTPUT_PRIVATE_KEY, OUTPUT_PASSWORD, OUTPUT_BASTION_PRIVATE_KEY})
# Where and on what the host runs, kept in its own stack so `mapt aws host list` can show
# every host, on-demand ones too (they have no spotOption stack), from state alone.
OUTPUT_REGION = "region"
OUTPUT_AVAILABILITY_ZONE = "availability_zone"
OUTPUT_INSTANCE_TYPES = "instance_types"
OUTPUT_SPOT = "spot"
PLACEMENT_OUTPUTS = (OUTPUT_REGION, OUTPUT_AVAILABILITY_ZONE, OUTPUT_INSTANCE_TYPES, OUTPUT_SPOT)
# What `mapt aws host costs` prices from state: the OS (its spot product) and when the
# host was first created (the `time.Static` of every resource's created-at tag).
OUTPUT_OS = "os"
OUTPUT_CREATED_AT = "created_at"
COST_OUTPUTS = (OUTPUT_OS, OUTPUT_CREATED_AT)
# The spot host's Auto Scaling group, whose launch is verified after `up`.
OUTPUT_GROUP_NAME = "asg_name"
# A spot host without a load balancer: the instance whose public address its name
# (and its ``host`` output) points at.
OUTPUT_INSTANCE_ID = "instance_id"
# What the host waits for over SSH (HostRequest.awaited_secrets), and once delivered, the
# instance that got it and the id GitHub gave its runner (with the runner's scope, as
# RunnerScope.api_path): destroy removes that runner and no other.
OUTPUT_AWAITED_SECRETS = "awaited_secrets"
OUTPUT_CONFIGURED_INSTANCE = "configured_instance"
OUTPUT_RUNNER_ID = "runner_id"
OUTPUT_RUNNER_SCOPE = "runner_scope"

# The on-demand host's Elastic IP (``_compute.on_demand_host``): its public address, the
# resource replaced to give the host a new one (``host_address_urn``).
HOST_ADDRESS_TYPE = "aws:ec2/eip:Eip"
HOST_ADDRESS_NAME = "host-eip"

Program = Callable[[], None]
# Runs `up` on a program and returns the stack's outputs as plain values.
UpFunction = Callable[[Program], Mapping[str, Any]]
ReadinessFunction = Callable[[SshAccess], None]
# Hands a ready host its secrets: (access, the stack's outputs) -> what was done, or
# None when nothing was (the sandbox logs in to no machine: nothing is recorded).
SetupFunction = Callable[[SshAccess, Mapping[str, Any]], HostSetup | None]
# Confirms a spot group's launch and reads its instance's public address.
LaunchFunction = Callable[[], LaunchedInstance]


@dataclass(frozen=True)
class HostPhase:
    """One ``up`` of the host stack. ``nat`` keeps the air-gap bootstrap NAT gateway."""

    name: str
    nat: bool


PHASE_CREATE = HostPhase("create", nat=False)
# Air-gapped: the host boots with a way out through the NAT, then the NAT is removed.
PHASE_BOOTSTRAP = HostPhase("bootstrap", nat=True)
PHASE_AIRGAP = HostPhase("airgap", nat=False)


def host_stack_name(ctx: RunContext) -> str:
    """The host's stack: ``host-<project>``."""
    return ctx.stack_name(HOST_STACK)


def host_group_name(ctx: RunContext) -> str:
    """The spot host's Auto Scaling group: ``mapt-host-<project>``.

    Fixed rather than generated, so that after a failed ``up`` (when there may be no
    outputs to read) the group can still be found and asked why it did not launch.
    Group names are unique per account and region and hold 255 characters; a project
    name holds at most 40.
    """
    return f"mapt-{host_stack_name(ctx)}"


def host_phases(request: HostRequest) -> tuple[HostPhase, ...]:
    """The ``up`` runs that create the host, in order."""
    return (PHASE_BOOTSTRAP, PHASE_AIRGAP) if request.airgap else (PHASE_CREATE,)


def host_output_names(
    request: HostRequest, *, spot: bool, configured: bool = False
) -> tuple[str, ...]:
    """The outputs the host's stack exports: placement, connection values, spot group.

    ``configured``: after the secrets were delivered (``deploy_host``'s last ``up``),
    which adds the configured instance, the Windows password and the runner's id.
    """
    names = [*PLACEMENT_OUTPUTS, *COST_OUTPUTS, OUTPUT_HOST, OUTPUT_USERNAME, OUTPUT_PRIVATE_KEY]
    if request.awaited_secrets:
        names.append(OUTPUT_AWAITED_SECRETS)
        if configured:
            names.append(OUTPUT_CONFIGURED_INSTANCE)
    if configured and request.is_windows:
        names.append(OUTPUT_PASSWORD)
    if configured and request.runner is not None:
        names += [OUTPUT_RUNNER_ID, OUTPUT_RUNNER_SCOPE]
    if request.airgap:
        names += [OUTPUT_BASTION_HOST, OUTPUT_BASTION_USERNAME, OUTPUT_BASTION_PRIVATE_KEY]
    if spot:
        names.append(OUTPUT_GROUP_NAME)
        if not request.load_balanced(spot):
            names.append(OUTPUT_INSTANCE_ID)
    if request.dns_zone is not None:
        names.append(OUTPUT_DNS_NAME)
    return tuple(names)


def host_program(
    ctx: RunContext,
    allocation: AllocationResult,
    request: HostRequest,
    *,
    phase: HostPhase | None = None,
    setup: HostSetup | None = None,
    instance: LaunchedInstance | None = None,
) -> Program:
    """The Pulumi program of one phase; ``None`` is the last phase (the final shape).

    The program deploys into ``allocation.region`` and its AZ whatever provider
    configuration the stack has, and launches exactly the allocated instance types.
    ``setup`` (what ``configure_host`` did) is recorded in the outputs. ``instance`` is
    what a spot host without a load balancer points its address and name at (the
    group's instance); None before the group has launched one: no address, no record.
    """
    phases = host_phases(request)
    chosen = phase if phase is not None else phases[-1]
    if chosen not in phases:
        raise ValueError(f"phase {chosen.name!r} is not a phase of this host")
    if not allocation.instance_types:
        raise InputError("the allocation offers no instance type to launch")
    stack = host_stack_name(ctx)

    def program() -> None:
        _declare_host(
            ctx, allocation, request, stack=stack, nat=chosen.nat, setup=setup, instance=instance
        )

    return program


def deploy_host(
    ctx: RunContext,
    allocation: AllocationResult,
    request: HostRequest,
    *,
    up: UpFunction,
    wait: ReadinessFunction | None = None,
    readiness_timeout: float = DEFAULT_READY_TIMEOUT,
    setup: SetupFunction | None = None,
    recorded: HostSetup | None = None,
    launched: LaunchFunction | None = None,
    recorded_instance: LaunchedInstance | None = None,
) -> dict[str, Any]:
    """Run every phase with ``up``, waiting for readiness after each; return the outputs.

    Air-gapped hosts take two phases: the host boots with the NAT and is waited for
    (cloud-init installs packages through it), then the NAT is removed and the host is
    waited for again, through the bastion. A failure in any phase, ``up`` or
    readiness, stops there and propagates: the same error, with its class, fields and
    exit code, its message naming the phase for air-gapped hosts.
    ``wait`` replaces the SSH readiness check (tests); by default it is
    ``wait_until_ready`` with ``readiness_timeout`` seconds.

    A host that awaits secrets gets them over SSH after the first phase is ready
    (while an air-gapped host still has its way out: registering needs the internet);
    ``setup`` replaces ``configure_host`` (tests). What it did is recorded in the
    stack's outputs by the next phase's ``up``, or by one more ``up`` of the last phase
    (which changes outputs only). ``recorded`` is what the stack recorded before (a
    re-run: ``recorded_setup``), kept in the outputs until the new delivery is done, so
    a re-run that fails before it does not forget the runner destroy must remove; a
    re-run without a runner (``request.runner`` None) keeps its runner for good: that
    runner is still registered with GitHub until destroy removes it.

    A spot host without a load balancer (``request.load_balanced`` False) is pointed at
    its group's instance: after each ``up``, ``launched`` (required then) confirms the
    launch and gives the instance and its public address; when that is not the one
    the ``up`` used, one more ``up`` repoints the ``host`` output and the name's record
    (an UPSERT), before readiness is waited for at that address. ``recorded_instance``
    is the one the stack points at already (a re-run), kept until then, so a re-run
    never removes the name of a host whose instance did not change. ``wait`` then
    checks readiness only: the launch was confirmed by ``launched``.
    """
    phases = host_phases(request)

    def default_wait(access: SshAccess) -> None:
        wait_until_ready(access, timeout=readiness_timeout)

    check = wait if wait is not None else default_wait
    configure = setup if setup is not None else _default_setup(allocation.region, request)
    pinned = allocation.is_spot and not request.load_balanced(True)
    if pinned and launched is None:
        raise ValueError("a spot host without a load balancer needs the launch function")
    instance = recorded_instance if pinned else None

    def program(
        phase: HostPhase, setup: HostSetup | None, instance: LaunchedInstance | None
    ) -> Program:
        return host_program(ctx, allocation, request, phase=phase, setup=setup, instance=instance)

    outputs: dict[str, Any] = {}
    done: HostSetup | None = None
    for phase in phases:
        try:
            log.info("host stack %s: up (%s)", host_stack_name(ctx), phase.name)
            shown = done or recorded
            outputs = dict(up(program(phase, shown, instance)))
            if pinned and launched is not None:
                current = launched()
                if current != instance:
                    log.info(
                        "host stack %s: pointing at %s (%s)",
                        host_stack_name(ctx),
                        current.instance_id,
                        current.public_ip,
                    )
                    instance = current
                    outputs = dict(up(program(phase, shown, instance)))
            access = host_access(outputs, request)
            check(access)
            if done is None and request.awaited_secrets:
                done = configure(access, outputs)
                if done is not None and request.runner is None and recorded is not None:
                    # No runner asked for this time: the one registered before still is.
                    done = replace(
                        done, runner_id=recorded.runner_id, runner_scope=recorded.runner_scope
                    )
                if done is not None and phase == phases[-1]:
                    log.info("host stack %s: recording %s", host_stack_name(ctx), done.instance_id)
                    outputs = dict(up(program(phase, done, instance)))
        except MaptError as err:
            if len(phases) == 1:
                raise
            err.add_context(f"air-gapped host, phase {phase.name!r}")
            raise
    return outputs


def recorded_instance(outputs: Mapping[str, Any]) -> LaunchedInstance | None:
    """The instance a spot host without a load balancer points at, as its stack says."""
    instance, address = outputs.get(OUTPUT_INSTANCE_ID), outputs.get(OUTPUT_HOST)
    if isinstance(instance, str) and instance and isinstance(address, str) and address:
        return LaunchedInstance(instance, address)
    return None


def recorded_setup(outputs: Mapping[str, Any]) -> HostSetup | None:
    """What a host stack's outputs say an earlier delivery did; None if nothing."""
    instance = outputs.get(OUTPUT_CONFIGURED_INSTANCE)
    if not isinstance(instance, str) or not instance:
        return None
    runner_id, scope = outputs.get(OUTPUT_RUNNER_ID), outputs.get(OUTPUT_RUNNER_SCOPE)
    password = outputs.get(OUTPUT_PASSWORD)
    return HostSetup(
        instance_id=instance,
        runner_id=runner_id if isinstance(runner_id, int) else None,
        password=password if isinstance(password, str) else None,
        runner_scope=scope if isinstance(scope, str) else None,
    )


def _default_setup(region: str, request: HostRequest) -> SetupFunction:
    """``configure_host`` over SSH, with EC2's password of the instance for Windows."""

    def configure(access: SshAccess, outputs: Mapping[str, Any]) -> HostSetup:
        from mapt.targets.aws._setup import configure_host, fetch_windows_password

        def windows_password(instance_id: str) -> str:
            from mapt.core import aws_session

            return fetch_windows_password(
                aws_session(), region, instance_id, access.target.private_key
            )

        return configure_host(access, request, windows_password=windows_password)

    return configure


def host_address_urn(ref: StackRef) -> str:
    """The URN of the Elastic IP that is the host's public address, in its stack ``ref``."""
    return ref.urn(HOST_ADDRESS_TYPE, HOST_ADDRESS_NAME)


def public_address_refusal(outputs: Mapping[str, Any]) -> str | None:
    """Why the host whose stack has ``outputs`` has no public address of its own to
    exchange for a new one; None when it has (an on-demand host's Elastic IP).

    Air-gapped hosts have a private address only (reached through their bastion). A
    spot host's address is its load balancer's Elastic IP, which it keeps when spot
    replaces the machine: a new one would mean a new load balancer, and its target
    groups cannot join a second one while the first exists. A stack that does not say
    whether it runs on spot is not guessed at.
    """
    if outputs.get(OUTPUT_BASTION_HOST) is not None:
        return "it is air-gapped: it has no public address (it is reached through its bastion)"
    spot = outputs.get(OUTPUT_SPOT)
    if spot is True and outputs.get(OUTPUT_INSTANCE_ID):
        return (
            "it runs on spot without a load balancer: its address is its instance's own, "
            "which changes only with the instance (its name follows: repoint)"
        )
    if spot is True:
        return (
            "it runs on spot: its address is its load balancer's, which stays the same when "
            "spot replaces the machine, and a new one would replace the load balancer"
        )
    if spot is not False:
        return f"its host stack has no {OUTPUT_SPOT!r} output saying how it runs"
    return None


def host_connection_values(outputs: Mapping[str, Any]) -> dict[str, str]:
    """The outputs that become connection files, in mapt's order, as text.

    A host with a name has it in ``host`` (what clients should use: it survives a
    replacement), and the address it points at now in ``address``.
    """
    values = dict(outputs)
    name = outputs.get(OUTPUT_DNS_NAME)
    if name is not None:
        values[CONNECTION_ADDRESS] = values.get(OUTPUT_HOST)
        values[OUTPUT_HOST] = name
    return {
        name: str(values[name])
        for name in CONNECTION_OUTPUTS
        if name in values and values[name] is not None
    }


def host_access(outputs: Mapping[str, Any], request: HostRequest) -> SshAccess:
    """How readiness reaches the host, from the stack's outputs."""

    def text(name: str) -> str:
        value = outputs.get(name)
        if not isinstance(value, str) or not value:
            raise OperationError(f"the host stack has no {name!r} output to connect with")
        return value

    target = SshEndpoint(text(OUTPUT_HOST), text(OUTPUT_USERNAME), text(OUTPUT_PRIVATE_KEY))
    bastion = None
    if request.airgap:
        bastion = SshEndpoint(
            text(OUTPUT_BASTION_HOST),
            text(OUTPUT_BASTION_USERNAME),
            text(OUTPUT_BASTION_PRIVATE_KEY),
        )
    return SshAccess(target=target, bastion=bastion, wait_for_cloud_init=not request.is_windows)


def _declare_host(
    ctx: RunContext,
    allocation: AllocationResult,
    request: HostRequest,
    *,
    stack: str,
    nat: bool,
    setup: HostSetup | None,
    instance: LaunchedInstance | None,
) -> None:
    """Register every resource of the host stack (runs inside the Pulumi program)."""
    import pulumi
    import pulumi_aws as aws
    import pulumi_tls as tls

    from mapt.targets.aws import _compute, _dns
    from mapt.targets.aws._base import new_deployment
    from mapt.targets.aws._network import build_network
    from mapt.targets.aws._tags import TAG_CREATED_AT
    from mapt.targets.aws._userdata import cloud_config, windows_userdata

    dep = new_deployment(ctx, region=allocation.region, stack=stack, expires_at=request.expires_at)
    network = build_network(
        dep,
        region=allocation.region,
        availability_zone=allocation.availability_zone,
        ports=request.ports,
        airgap=request.airgap,
        nat=nat,
        service_endpoints=request.service_endpoints,
    )

    # Generated once and then kept in the stack's state (as a secret): re-running create
    # reuses the same key instead of rotating it. It is RSA: EC2 encrypts a Windows
    # instance's password with it.
    def generated_key_pair(role: str) -> tuple[tls.PrivateKey, aws.ec2.KeyPair]:
        key = tls.PrivateKey(f"{role}-ssh-key", algorithm="RSA", rsa_bits=4096)
        pair = aws.ec2.KeyPair(
            f"{role}-key-pair",
            public_key=key.public_key_openssh,
            tags=dep.named_tags(f"mapt-{role}"),
            opts=dep.opts(),
        )
        return key, pair

    key, key_pair = generated_key_pair("host")
    # User data holds no secret (see _userdata): secrets arrive over SSH (_setup).
    user_data: pulumi.Output[str]
    if request.is_windows:
        user_data = key.public_key_openssh.apply(
            lambda public_key: windows_userdata(request, public_key=public_key)
        )
    else:
        user_data = pulumi.Output.from_input(cloud_config(request))
    image = _compute.lookup_image(dep, request.image)
    group_name: pulumi.Output[str] | None = None
    address: pulumi.Output[str] | None
    if allocation.is_spot:
        spot = _compute.spot_host(
            dep,
            network,
            request=request,
            group_name=host_group_name(ctx),
            instance_types=allocation.instance_types,
            max_price=allocation.max_price,
            image=image,
            key_name=key_pair.key_name,
            user_data=user_data,
            airgap=request.airgap,
            load_balancer=request.load_balanced(True),
        )
        address, group_name = spot.address, spot.group_name
        if address is None and instance is not None:
            address = pulumi.Output.from_input(instance.public_ip)
            pulumi.export(OUTPUT_INSTANCE_ID, instance.instance_id)
    else:
        address = _compute.on_demand_host(
            dep,
            network,
            request=request,
            instance_type=allocation.instance_types[0],
            image=image,
            key_name=key_pair.key_name,
            user_data=user_data,
            airgap=request.airgap,
        )
    pulumi.export(OUTPUT_REGION, allocation.region)
    pulumi.export(OUTPUT_AVAILABILITY_ZONE, allocation.availability_zone)
    pulumi.export(OUTPUT_INSTANCE_TYPES, list(allocation.instance_types))
    pulumi.export(OUTPUT_SPOT, allocation.is_spot)
    pulumi.export(OUTPUT_OS, request.os)
    pulumi.export(OUTPUT_CREATED_AT, dep.tags[TAG_CREATED_AT])
    if address is not None:
        pulumi.export(OUTPUT_HOST, address)
        if request.dns_zone is not None:
            if request.dns_zone_id is None:
                raise ValueError(f"hosted zone {request.dns_zone!r} was not looked up")
            zone = _dns.HostedZone(request.dns_zone, request.dns_zone_id)
            name = _dns.record_name(ctx.project_name, zone.name)
            _dns.host_record(dep, zone, name, address)
            pulumi.export(OUTPUT_DNS_NAME, name)
    pulumi.export(OUTPUT_USERNAME, request.username)
    pulumi.export(OUTPUT_PRIVATE_KEY, pulumi.Output.secret(key.private_key_pem))
    if request.awaited_secrets:
        pulumi.export(OUTPUT_AWAITED_SECRETS, list(request.awaited_secrets))
    if setup is not None:
        pulumi.export(OUTPUT_CONFIGURED_INSTANCE, setup.instance_id)
        if setup.password is not None:
            pulumi.export(OUTPUT_PASSWORD, pulumi.Output.secret(setup.password))
        if setup.runner_id is not None:
            pulumi.export(OUTPUT_RUNNER_ID, setup.runner_id)
        if setup.runner_scope is not None:
            pulumi.export(OUTPUT_RUNNER_SCOPE, setup.runner_scope)
    if group_name is not None:
        pulumi.export(OUTPUT_GROUP_NAME, group_name)
    if request.airgap:
        bastion_key, bastion_key_pair = generated_key_pair("bastion")
        bastion_address = _compute.bastion(dep, network, key_name=bastion_key_pair.key_name)
        pulumi.export(OUTPUT_BASTION_HOST, bastion_address)
        pulumi.export(OUTPUT_BASTION_USERNAME, _compute.BASTION_USERNAME)
        pulumi.export(OUTPUT_BASTION_PRIVATE_KEY, pulumi.Output.secret(bastion_key.private_key_pem))
