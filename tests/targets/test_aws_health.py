"""The library's health check of a deployed host: what AWS says of its machine (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mapt.targets.aws import host_health
from tests.harness.images import publish_image

REGION = "us-east-1"
GROUP = "mapt-host-pr-1"  # the group name a spot host of project pr-1 gets


@pytest.fixture
def ec2(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def _image() -> str:
    return publish_image(REGION, "Fedora-Cloud-Base-AmazonEC2.x86_64-41-1", "125523088429")


def _health(**where: Any) -> Any:
    return host_health(boto3.Session(), project="pr-1", region=REGION, **where)


def test_an_on_demand_host_is_healthy_while_its_instance_runs_and_named_once_terminated(
    ec2: Any,
) -> None:
    [instance] = ec2.run_instances(
        ImageId=_image(), InstanceType="t3.large", MinCount=1, MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "mapt:project", "Value": "pr-1"}]}
        ],
    )["Instances"]  # fmt: skip
    address = instance["PrivateIpAddress"]
    healthy = _health(address=address, spot=False)
    assert (healthy.healthy, healthy.instance) == (True, instance["InstanceId"])

    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    sick = _health(address=address, spot=False)
    assert not sick.healthy
    assert sick.reason.startswith(f"instance {instance['InstanceId']} ")
    assert "terminated" in sick.reason


def test_another_projects_instance_at_the_same_private_address_is_not_this_host(
    ec2: Any,
) -> None:
    # Air-gapped hosts each have a network of their own with the same addresses: the
    # instance of pr-2 at pr-1's address says nothing of pr-1's machine.
    addresses = []
    for project in ("pr-1", "pr-2"):
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.101.0/24")["Subnet"]["SubnetId"]
        [instance] = ec2.run_instances(
            ImageId=_image(), InstanceType="t3.large", MinCount=1, MaxCount=1,
            SubnetId=subnet, PrivateIpAddress="10.0.101.10",
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "mapt:project", "Value": project}]}
            ],
        )["Instances"]  # fmt: skip
        addresses.append(instance["PrivateIpAddress"])
        if project == "pr-1":
            ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
            gone = instance["InstanceId"]
    assert addresses == ["10.0.101.10", "10.0.101.10"]
    sick = _health(address="10.0.101.10", spot=False)
    assert not sick.healthy
    assert (sick.instance, "terminated" in sick.reason) == (gone, True)


def test_a_host_with_no_instance_anywhere_is_named_by_its_address(ec2: Any) -> None:
    sick = _health(address="192.0.2.10", spot=False)
    assert sick.reason == "no instance in us-east-1 has the host's address 192.0.2.10"


def test_a_spot_host_is_healthy_while_its_group_has_a_running_instance_in_service(
    ec2: Any,
) -> None:
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    assert _health(address=None, spot=True).reason == (
        f"Auto Scaling group {GROUP} no longer exists in {REGION}"
    )
    template = ec2.create_launch_template(
        LaunchTemplateName="host",
        LaunchTemplateData={"ImageId": _image(), "InstanceType": "t3.large"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP, MinSize=1, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template}, AvailabilityZones=[f"{REGION}a"],
    )  # fmt: skip
    healthy = _health(address=None, spot=True)
    assert healthy.healthy

    # The group replaces a terminated instance itself: healthy again, on the new one.
    ec2.terminate_instances(InstanceIds=[healthy.instance])
    replaced = _health(address=None, spot=True)
    assert replaced.healthy
    assert replaced.instance != healthy.instance

    autoscaling.set_instance_health(InstanceId=str(replaced.instance), HealthStatus="Unhealthy")
    sick = _health(address=None, spot=True)
    assert (sick.healthy, sick.reason) == (
        False,
        f"Auto Scaling group {GROUP} in {REGION} has no healthy instance in service",
    )
