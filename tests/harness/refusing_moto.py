"""moto_server whose Auto Scaling groups refuse launches in chosen zones, as AWS does
when a zone has no capacity: ``patch()``, which ``tests/harness/sandbox_moto.py`` (the
sandbox modules' moto_server, in its own process) installs before it serves.

moto fulfils every launch and answers ``DescribeScalingActivities`` with nothing, and a
botocore hook of a test cannot reach a server in another process (the service's
workers ask it). So this process patches moto's Auto Scaling backend before serving:

- ``FakeAutoScalingGroup.replace_autoscaling_group_instances`` (moto's one launch path:
  a group's creation, a desired capacity, a member terminated or detached through Auto
  Scaling without lowering it reach it through ``set_desired_capacity``, a member
  terminated in EC2 through ``notify_terminate_instances``): when every zone the launch
  may use (the zone of the group's first subnet, where moto launches, else the group's
  zones) is listed in the file named by ``MAPT_TEST_REFUSED_ZONES`` (one zone a line,
  read at each launch, so a test flips it while the server runs), nothing is launched
  and the group records a failed launch activity with AWS's status and words
  (``REFUSAL``, from a real spot group's activity history);
- ``AutoScalingResponse.describe_scaling_activities``: moto's answers nothing; here the
  group's recorded activities, newest first (only the refusals: moto records no other).

The patch is pinned to moto's structure (5.2.x): ``patch`` checks the signatures and
moto's empty answer it relies on, and raises ``RuntimeError`` naming what changed
rather than serving a moto that would launch everywhere anyway.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

# The file listing the refused zones; unset or missing: every zone launches.
REFUSED_ZONES_VARIABLE = "MAPT_TEST_REFUSED_ZONES"
# What AWS writes in a spot group's failed launch activity when the zone has no capacity.
REFUSAL = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
    "capacity available that matches your request. Launching EC2 instance failed."
)


def refused_zones() -> frozenset[str]:
    """The zones the control file lists now."""
    path = os.environ.get(REFUSED_ZONES_VARIABLE)
    if not path or not Path(path).exists():
        return frozenset()
    return frozenset(line.strip() for line in Path(path).read_text().splitlines() if line.strip())


def _expect(found: object, expected: list[str], what: str) -> None:
    import moto

    parameters = list(inspect.signature(found).parameters)  # type: ignore[arg-type]
    if parameters != expected:
        raise RuntimeError(
            f"moto {moto.__version__} changed {what}: parameters {parameters}, not {expected}; "
            "update tests/harness/refusing_moto.py"
        )


def patch() -> None:
    """Make moto's groups refuse launches in the listed zones (module doc)."""
    import moto
    from moto.autoscaling.models import Activity, FakeAutoScalingGroup
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    launch = FakeAutoScalingGroup.replace_autoscaling_group_instances
    _expect(launch, ["self", "count_needed", "propagated_tags"], "the groups' launch")
    _expect(
        Activity.__init__,
        ["self", "description", "cause", "auto_scaling_group", "activity_id", "start_time",
         "end_time", "status_code"],
        "Activity",
    )  # fmt: skip
    _expect(AutoScalingResponse.describe_scaling_activities, ["self"], "DescribeScalingActivities")
    if '{"Activities": []}' not in inspect.getsource(
        AutoScalingResponse.describe_scaling_activities
    ):
        raise RuntimeError(
            f"moto {moto.__version__} answers DescribeScalingActivities itself now: "
            "update tests/harness/refusing_moto.py to keep its activities"
        )

    def zones_of(group: Any) -> set[str]:
        if group.vpc_zone_identifier:
            subnet = group.vpc_zone_identifier.split(",")[0]
            return {group.autoscaling_backend.ec2_backend.get_subnet(subnet).availability_zone}
        return set(group.availability_zones)

    def refusing_launch(group: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        zones = zones_of(group)
        if not zones or not zones <= refused_zones():
            launch(group, count_needed, propagated_tags)
            return
        activity = Activity(
            description=f"Launching a new EC2 instance.  Status Reason: {REFUSAL}",
            cause=(
                "An instance was started in response to a difference between desired and "
                f"actual capacity, increasing the capacity to {group.desired_capacity}."
            ),
            auto_scaling_group=group,
            status_code="Failed",
        )
        activity.status_message = REFUSAL  # type: ignore[attr-defined]
        activity.progress = 100
        if not hasattr(group, "refused_launches"):
            group.refused_launches = []
        group.refused_launches.insert(0, activity)

    def describe_scaling_activities(response: Any) -> Any:
        name = response._get_param("AutoScalingGroupName")
        groups = response.autoscaling_backend.autoscaling_groups
        activities = [
            activity
            for group in groups.values()
            if name in (None, group.name)
            for activity in getattr(group, "refused_launches", [])
        ]
        return ActionResult({"Activities": activities})

    FakeAutoScalingGroup.replace_autoscaling_group_instances = refusing_launch  # type: ignore[method-assign]
    AutoScalingResponse.describe_scaling_activities = describe_scaling_activities  # type: ignore[method-assign]
