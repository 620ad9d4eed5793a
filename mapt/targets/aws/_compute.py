"""The machines: the host (spot behind a load balancer, or on-demand) and the bastion.

Spot: a launch template and an Auto Scaling group of exactly one instance, in the
allocated subnet, launching only the allocated instance types, all as spot with the
allocation's max price. A network load balancer with a fixed address sits in front
(an Elastic IP, or a fixed private IP when air-gapped), so the host keeps its address
when spot replaces the instance; a host with a name (``--dns-zone``) has none unless
asked (``--spot-load-balancer``): its name follows the instance's own address.
``up`` does not wait for the instance: the group has a known name, and
``_launch.verify_spot_launch`` waits for it and reads AWS's reason when the launch
fails.

On-demand: one ``ec2.Instance`` of the first offered type (deterministic: the
allocation lists types best first) with an Elastic IP, or its private IP when
air-gapped.

A request with an expiry gives both kinds of host the shutdown behaviour
``terminate``, so the power-off its first-boot script schedules ends the instance;
the spot group also gets a scheduled action that scales it to zero at that time.

Imported only while a program runs (it imports ``pulumi_aws``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_UP, Decimal

import pulumi
import pulumi_aws as aws

from mapt.core import InputError
from mapt.targets.aws._base import Deployment
from mapt.targets.aws._host import HOST_ADDRESS_NAME
from mapt.targets.aws._network import ANYWHERE, Network, security_group
from mapt.targets.aws._request import SSH_PORT, HostRequest, ImageLookup
from mapt.targets.aws._tags import utc_timestamp

# The load balancer's fixed address inside the private subnet (10.0.101.0/24) when
# air-gapped: AWS reserves .0-.3 and .255, mapt takes a stable low address.
AIRGAP_HOST_ADDRESS = "10.0.101.10"
SPOT_ALLOCATION_STRATEGY = "price-capacity-optimized"
# `up` returns as soon as the group exists ("0" turns the provider's wait off): the
# launch is verified afterwards from the group's scaling activities, which give AWS's
# reason for a failure (no capacity, max price too low) instead of a bare timeout.
SPOT_CAPACITY_TIMEOUT = "0"
EXPIRY_ACTION_NAME = "mapt-expiry"
# What an instance does when its own OS powers it off (the expiry timer does).
SHUTDOWN_TERMINATES = "terminate"
BASTION_INSTANCE_TYPE = "t3.small"
BASTION_USERNAME = "ec2-user"
BASTION_IMAGE = ImageLookup("al2023-ami-2023.*-x86_64", "amazon", "x86_64")
# IMDSv2 only: instance metadata (and so instance credentials) need a session token.
_IMDS_ENDPOINT = "enabled"
_IMDS_TOKENS = "required"


def lookup_image(dep: Deployment, image: ImageLookup) -> pulumi.Output[aws.ec2.GetAmiResult]:
    """The newest AMI matching ``image`` in the allocated region."""
    return aws.ec2.get_ami_output(
        most_recent=True,
        owners=[image.owner],
        filters=[
            {"name": "name", "values": [image.name]},
            {"name": "architecture", "values": [image.architecture]},
        ],
        opts=dep.invoke_opts(),
    )


def spot_max_price(max_price: float) -> str:
    """The price cap as AWS takes it: a decimal string, rounded up to 1/1,000,000 USD.

    Rounding up keeps the cap at or above the allocation's max price, never below.
    """
    if max_price <= 0:
        raise InputError(f"spot max price {max_price!r} must be greater than zero")
    value = Decimal(repr(max_price)).quantize(Decimal("0.000001"), rounding=ROUND_UP)
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class SpotHost:
    """What the spot host's resources give back: its stable address and group name.

    ``address`` is None without a load balancer: the instance's address is known only
    once the group has launched it.
    """

    address: pulumi.Output[str] | None
    group_name: pulumi.Output[str]


def spot_host(
    dep: Deployment,
    network: Network,
    *,
    request: HostRequest,
    group_name: str,
    instance_types: Sequence[str],
    max_price: float | None,
    image: pulumi.Output[aws.ec2.GetAmiResult],
    key_name: pulumi.Input[str],
    user_data: pulumi.Output[str],
    airgap: bool,
    load_balancer: bool = True,
) -> SpotHost:
    """Declare the spot host, its load balancer (if any) and its expiry schedule (if any)."""
    if not instance_types:
        raise InputError("the allocation offers no instance type to launch")
    volume_tags = dep.named_tags("mapt-host")
    template = aws.ec2.LaunchTemplate(
        "host-template",
        image_id=image.id,
        key_name=key_name,
        vpc_security_group_ids=[network.host_security_group.id],
        user_data=user_data.apply(lambda text: base64.b64encode(text.encode()).decode()),
        block_device_mappings=[
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=image.root_device_name,
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=request.disk_size,
                    volume_type="gp3",
                    delete_on_termination="true",
                ),
            )
        ],
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint=_IMDS_ENDPOINT, http_tokens=_IMDS_TOKENS
        ),
        update_default_version=True,
        instance_initiated_shutdown_behavior=_shutdown_behavior(request.expires_at),
        tag_specifications=[
            aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=volume_tags)
            for kind in ("instance", "volume", "network-interface", "spot-instances-request")
        ],
        tags=dep.named_tags("mapt-host"),
        opts=dep.opts(),
    )
    address: pulumi.Output[str] | None = None
    target_groups: list[aws.lb.TargetGroup] = []
    if load_balancer:
        address, target_groups = _load_balancer(dep, network, ports=request.ports, airgap=airgap)
    distribution = aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
        on_demand_base_capacity=0,
        on_demand_percentage_above_base_capacity=0,
        spot_allocation_strategy=SPOT_ALLOCATION_STRATEGY,
        # None leaves the cap at AWS's default, the on-demand price.
        spot_max_price=None if max_price is None else spot_max_price(max_price),
    )
    group = aws.autoscaling.Group(
        "host-asg",
        name=group_name,
        min_size=1,
        max_size=1,
        desired_capacity=1,
        vpc_zone_identifiers=[network.host_subnet.id],
        capacity_rebalance=True,
        # Windows reboots while it bootstraps; a failed health check must not make the
        # group replace a host that is only restarting.
        suspended_processes=["HealthCheck"],
        force_delete=True,
        wait_for_capacity_timeout=SPOT_CAPACITY_TIMEOUT,
        target_group_arns=[tg.arn for tg in target_groups],
        mixed_instances_policy=aws.autoscaling.GroupMixedInstancesPolicyArgs(
            instances_distribution=distribution,
            launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                    launch_template_id=template.id,
                    version="$Latest",
                ),
                overrides=[
                    aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(
                        instance_type=name
                    )
                    for name in instance_types
                ],
            ),
        ),
        tags=dep.asg_tags("mapt-host"),
        # The name is fixed, so a replacement must delete the old group first.
        opts=dep.opts(delete_before_replace=True),
    )
    if request.expires_at is not None:
        _expiry_schedule(dep, group, request.expires_at)
    group_name_output: pulumi.Output[str] = group.name
    return SpotHost(address=address, group_name=group_name_output)


def _expiry_schedule(dep: Deployment, group: aws.autoscaling.Group, expires_at: datetime) -> None:
    """Scale the group to nothing at expiry, so AWS ends the instance and launches no other.

    The instance powers itself off at the same time; this also covers an instance
    that never got that far (stuck at boot) and keeps the group from replacing it.
    """
    aws.autoscaling.Schedule(
        "host-expiry",
        autoscaling_group_name=group.name,
        scheduled_action_name=EXPIRY_ACTION_NAME,
        # AWS takes a one-time action's start as UTC "YYYY-MM-DDThh:mm:ssZ".
        start_time=utc_timestamp(expires_at),
        min_size=0,
        max_size=0,
        desired_capacity=0,
        opts=dep.opts(),
    )


def _shutdown_behavior(expires_at: datetime | None) -> str | None:
    """``terminate`` when the host expires (its power-off ends it), else AWS's default."""
    return None if expires_at is None else SHUTDOWN_TERMINATES


def _load_balancer(
    dep: Deployment, network: Network, *, ports: Sequence[int], airgap: bool
) -> tuple[pulumi.Output[str], list[aws.lb.TargetGroup]]:
    """A network load balancer with a fixed address, one listener per port."""
    if airgap:
        # Internal, in the private subnet: reached through the bastion only.
        balancer = aws.lb.LoadBalancer(
            "host-lb",
            load_balancer_type="network",
            internal=True,
            subnet_mappings=[
                {"subnet_id": network.host_subnet.id, "private_ipv4_address": AIRGAP_HOST_ADDRESS}
            ],
            tags=dep.named_tags("mapt-host"),
            opts=dep.opts(),
        )
        address: pulumi.Output[str] = pulumi.Output.from_input(AIRGAP_HOST_ADDRESS)
    else:
        eip = aws.ec2.Eip(
            "host-lb-eip", domain="vpc", tags=dep.named_tags("mapt-host"), opts=dep.opts()
        )
        balancer = aws.lb.LoadBalancer(
            "host-lb",
            load_balancer_type="network",
            internal=False,
            subnet_mappings=[
                {"subnet_id": network.host_subnet.id, "allocation_id": eip.allocation_id}
            ],
            tags=dep.named_tags("mapt-host"),
            opts=dep.opts(),
        )
        address = eip.public_ip
    target_groups = []
    for port in ports:
        target_group = aws.lb.TargetGroup(
            f"host-tg-{port}",
            port=port,
            protocol="TCP",
            target_type="instance",
            vpc_id=network.vpc.id,
            deregistration_delay=30,
            health_check={"protocol": "TCP", "port": "traffic-port"},
            tags=dep.named_tags("mapt-host"),
            opts=dep.opts(),
        )
        aws.lb.Listener(
            f"host-listener-{port}",
            load_balancer_arn=balancer.arn,
            port=port,
            protocol="TCP",
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            tags=dep.named_tags("mapt-host"),
            opts=dep.opts(),
        )
        target_groups.append(target_group)
    return address, target_groups


def on_demand_host(
    dep: Deployment,
    network: Network,
    *,
    request: HostRequest,
    instance_type: str,
    image: pulumi.Output[aws.ec2.GetAmiResult],
    key_name: pulumi.Input[str],
    user_data: pulumi.Output[str],
    airgap: bool,
) -> pulumi.Output[str]:
    """Declare the on-demand host; return its address (Elastic IP, or private IP)."""
    instance = aws.ec2.Instance(
        "host",
        ami=image.id,
        instance_type=instance_type,
        subnet_id=network.host_subnet.id,
        vpc_security_group_ids=[network.host_security_group.id],
        key_name=key_name,
        user_data=user_data,
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
            volume_size=request.disk_size,
            volume_type="gp3",
            delete_on_termination=True,
            tags=dep.named_tags("mapt-host"),
        ),
        metadata_options=_instance_metadata_options(),
        instance_initiated_shutdown_behavior=_shutdown_behavior(request.expires_at),
        tags=dep.named_tags("mapt-host"),
        # A newer image published later must not replace a running host on re-run, and
        # new user data (a re-run's new expiry) must not stop and start it to rewrite a
        # script that only ever runs at first boot.
        opts=dep.opts(ignore_changes=["ami", "user_data"]),
    )
    if airgap:
        private_ip: pulumi.Output[str] = instance.private_ip
        return private_ip
    eip = aws.ec2.Eip(
        HOST_ADDRESS_NAME,
        domain="vpc",
        instance=instance.id,
        tags=dep.named_tags("mapt-host"),
        opts=dep.opts(),
    )
    public_ip: pulumi.Output[str] = eip.public_ip
    return public_ip


def _instance_metadata_options() -> aws.ec2.InstanceMetadataOptionsArgs:
    return aws.ec2.InstanceMetadataOptionsArgs(
        http_endpoint=_IMDS_ENDPOINT, http_tokens=_IMDS_TOKENS
    )


def bastion(
    dep: Deployment, network: Network, *, key_name: pulumi.Input[str]
) -> pulumi.Output[str]:
    """A small Amazon Linux instance in the public subnet, SSH only; returns its address."""
    image = lookup_image(dep, BASTION_IMAGE)
    group = security_group(dep, "bastion", network.vpc, ports=[SSH_PORT], cidr=ANYWHERE)
    instance = aws.ec2.Instance(
        "bastion",
        ami=image.id,
        instance_type=BASTION_INSTANCE_TYPE,
        subnet_id=network.public_subnet.id,
        associate_public_ip_address=True,
        vpc_security_group_ids=[group.id],
        key_name=key_name,
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
            volume_type="gp3",
            delete_on_termination=True,
            tags=dep.named_tags("mapt-bastion"),
        ),
        metadata_options=_instance_metadata_options(),
        tags=dep.named_tags("mapt-bastion"),
        opts=dep.opts(ignore_changes=["ami"]),
    )
    bastion_ip: pulumi.Output[str] = instance.public_ip
    return bastion_ip
