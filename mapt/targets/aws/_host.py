"""The AWS host target: its stack name, program(s), outputs, connection files, readiness.

This is the whole interface the CLI uses for ``mapt aws host create``:

1. ``host_stack_name(ctx)`` names the stack (``host-<project>``);
2. ``deploy_host(ctx, allocation, request, up=...)`` runs the program of every phase
   through the engine the caller hands in (one phase; two when air-gapped) and waits
   for the machine to be ready after each;
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
from dataclasses import dataclass
from typing import Any

from mapt.allocation import AllocationResult
from mapt.core import InputError, MaptError, OperationError, RunContext, get_logger
from mapt.targets._readiness import DEFAULT_READY_TIMEOUT, SshAccess, SshEndpoint, wait_until_ready
from mapt.targets.aws._request import HostRequest

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
CONNECTION_OUTPUTS = (
    OUTPUT_HOST,
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
# The spot host's Auto Scaling group, whose launch is verified after `up`.
OUTPUT_GROUP_NAME = "asg_name"

Program = Callable[[], None]
# Runs `up` on a program and returns the stack's outputs as plain values.
UpFunction = Callable[[Program], Mapping[str, Any]]
ReadinessFunction = Callable[[SshAccess], None]


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


def host_output_names(request: HostRequest, *, spot: bool) -> tuple[str, ...]:
    """The outputs the host's stack exports: placement, connection values, spot group."""
    names = [*PLACEMENT_OUTPUTS, OUTPUT_HOST, OUTPUT_USERNAME, OUTPUT_PRIVATE_KEY]
    if request.is_windows:
        names.append(OUTPUT_PASSWORD)
    if request.airgap:
        names += [OUTPUT_BASTION_HOST, OUTPUT_BASTION_USERNAME, OUTPUT_BASTION_PRIVATE_KEY]
    if spot:
        names.append(OUTPUT_GROUP_NAME)
    return tuple(names)


def host_program(
    ctx: RunContext,
    allocation: AllocationResult,
    request: HostRequest,
    *,
    phase: HostPhase | None = None,
) -> Program:
    """The Pulumi program of one phase; ``None`` is the last phase (the final shape).

    The program deploys into ``allocation.region`` and its AZ whatever provider
    configuration the stack has, and launches exactly the allocated instance types.
    """
    phases = host_phases(request)
    chosen = phase if phase is not None else phases[-1]
    if chosen not in phases:
        raise ValueError(f"phase {chosen.name!r} is not a phase of this host")
    if not allocation.instance_types:
        raise InputError("the allocation offers no instance type to launch")
    stack = host_stack_name(ctx)

    def program() -> None:
        _declare_host(ctx, allocation, request, stack=stack, nat=chosen.nat)

    return program


def deploy_host(
    ctx: RunContext,
    allocation: AllocationResult,
    request: HostRequest,
    *,
    up: UpFunction,
    wait: ReadinessFunction | None = None,
    readiness_timeout: float = DEFAULT_READY_TIMEOUT,
) -> dict[str, Any]:
    """Run every phase with ``up``, waiting for readiness after each; return the outputs.

    Air-gapped hosts take two phases: the host boots with the NAT and is waited for
    (cloud-init installs packages through it), then the NAT is removed and the host is
    waited for again, through the bastion. A failure in any phase, ``up`` or
    readiness, stops there and propagates, with the phase named for air-gapped hosts.
    ``wait`` replaces the SSH readiness check (tests); by default it is
    ``wait_until_ready`` with ``readiness_timeout`` seconds.
    """
    phases = host_phases(request)

    def default_wait(access: SshAccess) -> None:
        wait_until_ready(access, timeout=readiness_timeout)

    check = wait if wait is not None else default_wait
    outputs: dict[str, Any] = {}
    for phase in phases:
        try:
            log.info("host stack %s: up (%s)", host_stack_name(ctx), phase.name)
            outputs = dict(up(host_program(ctx, allocation, request, phase=phase)))
            check(host_access(outputs, request))
        except MaptError as err:
            if len(phases) == 1:
                raise
            raise type(err)(
                f"air-gapped host, phase {phase.name!r}: {err.message}", hint=err.hint
            ) from err
    return outputs


def host_connection_values(outputs: Mapping[str, Any]) -> dict[str, str]:
    """The outputs that become connection files, in mapt's order, as text."""
    return {
        name: str(outputs[name])
        for name in CONNECTION_OUTPUTS
        if name in outputs and outputs[name] is not None
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
) -> None:
    """Register every resource of the host stack (runs inside the Pulumi program)."""
    import pulumi
    import pulumi_aws as aws
    import pulumi_random as random
    import pulumi_tls as tls

    from mapt.targets.aws import _compute
    from mapt.targets.aws._base import new_deployment
    from mapt.targets.aws._network import build_network
    from mapt.targets.aws._userdata import PASSWORD_SPECIALS, cloud_config, windows_userdata

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

    # Generated once and then kept in the stack's state (as secrets): re-running create
    # reuses the same key and password instead of rotating them.
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
    user_data: pulumi.Output[str]
    password: random.RandomPassword | None = None
    if request.is_windows:
        password = random.RandomPassword(
            "host-password",
            length=24,
            special=True,
            override_special=PASSWORD_SPECIALS,
            min_lower=2,
            min_upper=2,
            min_numeric=2,
            min_special=2,
        )
        user_data = pulumi.Output.secret(
            pulumi.Output.all(key.public_key_openssh, password.result).apply(
                lambda values: windows_userdata(request, public_key=values[0], password=values[1])
            )
        )
    elif request.has_secrets:
        user_data = pulumi.Output.secret(
            cloud_config(request, subscription_password=request.rh_subscription_password)
        )
    else:
        user_data = pulumi.Output.from_input(cloud_config(request))
    image = _compute.lookup_image(dep, request.image)
    group_name: pulumi.Output[str] | None = None
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
        )
        address, group_name = spot.address, spot.group_name
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
    pulumi.export(OUTPUT_HOST, address)
    pulumi.export(OUTPUT_USERNAME, request.username)
    pulumi.export(OUTPUT_PRIVATE_KEY, pulumi.Output.secret(key.private_key_pem))
    if password is not None:
        pulumi.export(OUTPUT_PASSWORD, pulumi.Output.secret(password.result))
    if group_name is not None:
        pulumi.export(OUTPUT_GROUP_NAME, group_name)
    if request.airgap:
        bastion_key, bastion_key_pair = generated_key_pair("bastion")
        bastion_address = _compute.bastion(dep, network, key_name=bastion_key_pair.key_name)
        pulumi.export(OUTPUT_BASTION_HOST, bastion_address)
        pulumi.export(OUTPUT_BASTION_USERNAME, _compute.BASTION_USERNAME)
        pulumi.export(OUTPUT_BASTION_PRIVATE_KEY, pulumi.Output.secret(bastion_key.private_key_pem))
