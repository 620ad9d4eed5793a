"""Whether a deployed host's machine still runs: what AWS says, against what state says.

State says where the host is (its region, its address, spot or not); AWS says whether
a machine is there. An on-demand host is healthy while its project's instance at its
address is ``pending`` or ``running``. A spot host is healthy while its Auto Scaling group exists
and has an instance that is in service, healthy in the group's eyes and running in
EC2's (a spot instance reclaimed or terminated is no longer running, whatever the
group has noticed yet).

A failure to ask AWS is raised (``OperationError`` and its kind), never taken for a
dead host: unknown is not absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mapt.core import RunContext, translating_aws_errors
from mapt.targets.aws._host import host_group_name
from mapt.targets.aws._tags import TAG_PROJECT

_ALIVE = ("pending", "running")


@dataclass(frozen=True)
class HostHealth:
    """What AWS says of a host: healthy, or the reason it is not; the instance seen."""

    healthy: bool
    reason: str | None = None
    instance: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "reason": self.reason, "instance": self.instance}


def host_health(
    session: Any, *, project: str, region: str, address: str | None, spot: bool
) -> HostHealth:
    """The health of ``project``'s host in ``region`` (see the module doc)."""
    if spot:
        return _group_health(session, region, host_group_name(RunContext(project_name=project)))
    if not address:
        return HostHealth(False, f"the host of project {project!r} has no address in its state")
    return _instance_health(session, region, address, project)


def _instance_health(session: Any, region: str, address: str, project: str) -> HostHealth:
    ec2 = session.client("ec2", region_name=region)

    def described(*filters: tuple[str, str]) -> list[tuple[str, str]]:
        with translating_aws_errors("DescribeInstances", region=region):
            answer = ec2.describe_instances(
                Filters=[{"Name": name, "Values": [value]} for name, value in filters]
            )
        return [
            (i["InstanceId"], i["State"]["Name"])
            for r in answer["Reservations"]
            for i in r["Instances"]
        ]

    # The project's own instance at the address: a private address is unique only in
    # its network, and another project's host may have the same one in its own.
    project_tag = (f"tag:{TAG_PROJECT}", project)
    seen = described(("ip-address", address), project_tag) + described(
        ("private-ip-address", address), project_tag
    )
    alive = [instance for instance, state in seen if state in _ALIVE]
    if alive:
        return HostHealth(True, instance=alive[0])
    if seen:
        instance, state = seen[0]
        return HostHealth(
            False, f"instance {instance} at {address} in {region} is {state}", instance
        )
    # A terminated instance lets its address go: the project's tag still names it.
    tagged = described(project_tag)
    if tagged:
        instance, state = tagged[-1]
        reason = f"instance {instance} of project {project} in {region} is {state}"
        return HostHealth(False, f"{reason}; nothing has its address {address}", instance)
    return HostHealth(False, f"no instance in {region} has the host's address {address}")


def _group_health(session: Any, region: str, group_name: str) -> HostHealth:
    autoscaling = session.client("autoscaling", region_name=region)
    with translating_aws_errors("DescribeAutoScalingGroups", region=region):
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])
    found = groups["AutoScalingGroups"]
    if not found:
        return HostHealth(False, f"Auto Scaling group {group_name} no longer exists in {region}")
    members, states = group_members(session, region, found[0])
    alive = [instance for instance in members if states.get(instance) in _ALIVE]
    if alive:
        return HostHealth(True, instance=alive[0])
    if members:
        shown = ", ".join(f"{i} {states.get(i, 'gone')}" for i in members)
        return HostHealth(
            False, f"Auto Scaling group {group_name} has no running instance ({shown})", members[0]
        )
    return HostHealth(
        False, f"Auto Scaling group {group_name} in {region} has no healthy instance in service"
    )


def group_members(
    session: Any, region: str, group: Mapping[str, Any]
) -> tuple[list[str], dict[str, str]]:
    """The group's instances in service and healthy in its eyes, newest launched first,
    and EC2's state of each.

    Newest first because, while AWS's two-minute warning runs (or a capacity rebalance
    has launched a replacement), the interrupted instance is still in service next to
    its replacement, and the host's machine is the newer one. An instance EC2 no longer
    knows is absent from the states (not an error) and comes last.
    """
    members = [
        str(i["InstanceId"])
        for i in group.get("Instances", [])
        if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy"
    ]
    states: dict[str, str] = {}
    if members:
        ec2 = session.client("ec2", region_name=region)
        with translating_aws_errors("DescribeInstances", region=region):
            # A filter, not InstanceIds: an instance AWS forgot is absent, not an error.
            reservations = ec2.describe_instances(
                Filters=[{"Name": "instance-id", "Values": members}]
            )["Reservations"]
        described = [i for r in reservations for i in r["Instances"]]
        states = {i["InstanceId"]: i["State"]["Name"] for i in described}
        launched = {i["InstanceId"]: i["LaunchTime"].timestamp() for i in described}
        members.sort(key=lambda i: launched.get(i, float("-inf")), reverse=True)
    return members, states


def running_members(session: Any, region: str, group: Mapping[str, Any]) -> list[str]:
    """The group's instances that are in service, healthy, and pending or running in EC2."""
    members, states = group_members(session, region, group)
    return [instance for instance in members if states.get(instance) in _ALIVE]
