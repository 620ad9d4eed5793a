"""The machines: the host (spot behind a load balancer, or on-demand) and the bastion.

Spot: a launch template and an Auto Scaling group of exactly one instance, in the
allocated subnet, launching only the allocated instance types, all as spot with the
allocation's max price. A network load balancer with a fixed address sits in front
(an Elastic IP, or a fixed private IP when air-gapped), so the host keeps its address
when spot replaces the instance.

On-demand: one ``ec2.Instance`` of the first offered type (deterministic: the
allocation lists types best first) with an Elastic IP, or its private IP when
air-gapped.

Imported only while a program runs (it imports ``pulumi_aws``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from decimal import ROUND_UP, Decimal

import pulumi
import pulumi_aws as aws

from mapt.core import InputError
from mapt.targets.aws._base import Deployment
from mapt.targets.aws._network import ANYWHERE, Network, security_group
from mapt.targets.aws._request import SSH_PORT, HostRequest, ImageLookup

# The load balancer's fixed address inside the private subnet (10.0.101.0/24) when
# air-gapped: AWS reserves .0-.3 and .255, mapt takes a stable low address.
AIRGAP_HOST_ADDRESS = "10.0.101.10"
SPOT_ALLOCATION_STRATEGY = "price-capacity-optimized"
# How long `up` waits for the group to have its instance before failing: a spot request
# AWS cannot fill (SpotMaxPriceTooLow, no capacity) must fail the run, not pass it.
SPOT_CAPACITY_TIMEOUT = "15m"
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


def spot_host(
    dep: Deployment,
    network: Network,
    *,
    request: HostRequest,
    instance_types: Sequence[str],
    max_price: float | None,
    image: pulumi.Output[aws.ec2.GetAmiResult],
    key_name: pulumi.Input[str],
    user_data: pulumi.Output[str],
    airgap: bool,
) -> pulumi.Output[str]:
    """Declare the spot host and its load balancer; return the host's stable address."""
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
        tag_specifications=[
            aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=volume_tags)
            for kind in ("instance", "volume", "network-interface", "spot-instances-request")
        ],
        tags=dep.named_tags("mapt-host"),
        opts=dep.opts(),
    )
    address, target_groups = _load_balancer(dep, network, ports=request.ports, airgap=airgap)
    distribution = aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
        on_demand_base_capacity=0,
        on_demand_percentage_above_base_capacity=0,
        spot_allocation_strategy=SPOT_ALLOCATION_STRATEGY,
        # None leaves the cap at AWS's default, the on-demand price.
        spot_max_price=None if max_price is None else spot_max_price(max_price),
    )
    aws.autoscaling.Group(
        "host-asg",
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
        opts=dep.opts(),
    )
    return address


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
        tags=dep.named_tags("mapt-host"),
        # A newer image published later must not replace a running host on re-run.
        opts=dep.opts(ignore_changes=["ami"]),
    )
    if airgap:
        private_ip: pulumi.Output[str] = instance.private_ip
        return private_ip
    eip = aws.ec2.Eip(
        "host-eip",
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
