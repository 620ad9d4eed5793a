"""Spot launch verification against moto's Auto Scaling, with AWS's failed activities replayed.

moto launches a group's instances at once and records no scaling activities, so the
activities AWS writes for a refused spot launch are served through botocore's
``before-call`` event (``installed``) for the real moto group.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest

from mapt.core import ExitCode, NoCapacityError, OperationError
from mapt.targets.aws import (
    SpotLaunchError,
    launch_failure,
    verify_spot_launch,
    wait_for_replacement,
)
from mapt.targets.aws._launch import parse_reason_code
from tests.harness.spot_market import ApiCallLog, _response, installed

REGION = "eu-west-1"
GROUP = "mapt-host-ci-42"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)

# StatusMessages as AWS writes them for a launch it refused.
NO_CAPACITY = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
    "capacity available that matches your request. Launching EC2 instance failed."
)
UNFULFILLABLE = (
    "Could not launch Spot Instances. UnfulfillableCapacity - Unable to fulfill capacity "
    "due to your request configuration. Please adjust your request and try again. "
    "Launching EC2 instance failed."
)
PRICE_TOO_LOW = (
    "Could not launch Spot Instances. SpotMaxPriceTooLow - Your Spot request price of "
    "0.001 is lower than the minimum required Spot request fulfillment price of 0.0167. "
    "Launching EC2 instance failed."
)
QUOTA = (
    "Could not launch Spot Instances. MaxSpotInstanceCountExceeded - Max spot instance "
    "count exceeded. Launching EC2 instance failed."
)
NO_IMAGE = "The image id '[ami-0123456789abcdef0]' does not exist. Launching EC2 instance failed."
ON_DEMAND_WORDING = (
    "We currently do not have sufficient m5.large capacity in the Availability Zone you "
    "requested (eu-west-1b). Our system will be working on provisioning additional "
    "capacity. Launching EC2 instance failed."
)
NO_ADDRESSES = (
    "There are not enough free addresses in subnet 'subnet-0abc' to satisfy the requested "
    "number of instances. Launching EC2 instance failed."
)


def activity(status: str, message: str = "", minutes: int = 0) -> dict[str, Any]:
    """One scaling activity in the shape DescribeScalingActivities returns."""
    description = "Launching a new EC2 instance"
    if status in ("Failed", "Cancelled"):
        description += ".  Status Reason: " + message
    entry: dict[str, Any] = {
        "ActivityId": f"act-{status}-{minutes}",
        "AutoScalingGroupName": GROUP,
        "Description": description,
        "Cause": "At 2026-11-01T12:00:00Z an instance was started in response to a difference "
        "between desired and actual capacity.",
        "StartTime": T0 + timedelta(minutes=minutes),
        "StatusCode": status,
        "Progress": 100 if status in ("Failed", "Cancelled", "Successful") else 20,
    }
    if message:
        entry["StatusMessage"] = message
    return entry


class Activities:
    """Serves DescribeScalingActivities from ``items`` (newest first, as AWS does)."""

    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = list(items)
        self.calls = 0

    def _answer(self, model: Any, **_: Any) -> Any:
        if model.name != "DescribeScalingActivities":
            return None
        self.calls += 1
        return _response(200), {"Activities": list(self.items)}

    def handlers(self) -> list[tuple[str, Any]]:
        return [("before-call.autoscaling", self._answer)]


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingSession(boto3.Session):
    """A boto3 session that remembers the client configurations asked of it."""

    configs: list[Any]

    def client(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.configs.append(kwargs.get("config"))
        return super().client(*args, **kwargs)


def make_group(session: boto3.Session, desired: int) -> None:
    """A moto Auto Scaling group like the host program's, with ``desired`` instances."""
    ec2 = session.client("ec2", region_name=REGION)
    image = ec2.register_image(Name="mapt-test-image", RootDeviceName="/dev/sda1")["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="eu-west-1b")
    template = ec2.create_launch_template(
        LaunchTemplateName="host-template",
        # moto launches the template's type; AWS takes the group's overrides.
        LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    session.client("autoscaling", region_name=REGION).create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        MinSize=desired,
        MaxSize=1,
        DesiredCapacity=desired,
        VPCZoneIdentifier=subnet["Subnet"]["SubnetId"],
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": template,
                    "Version": "$Latest",
                },
                "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "m6i.large"}],
            },
            "InstancesDistribution": {
                "OnDemandPercentageAboveBaseCapacity": 0,
                "SpotAllocationStrategy": "price-capacity-optimized",
            },
        },
    )


@pytest.fixture
def replay(aws: ApiCallLog) -> Iterator[Activities]:
    """Scaling activities for clients created from now on: none until a test sets them."""
    served = Activities()
    with installed(served.handlers()):
        yield served


@pytest.fixture
def session(replay: Activities) -> boto3.Session:
    recording = RecordingSession(region_name=REGION)
    recording.configs = []
    return recording


@pytest.fixture
def pending_group(session: boto3.Session) -> None:
    """A group that exists and has not got its instance yet."""
    make_group(session, desired=0)


def test_an_instance_in_service_is_returned_without_waiting(session: RecordingSession) -> None:
    make_group(session, desired=1)
    session.configs.clear()
    time = FakeTime()
    instance = verify_spot_launch(session, REGION, GROUP, clock=time.clock, sleep=time.sleep)
    ec2 = session.client("ec2", region_name=REGION)
    found = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"]
    assert found[0]["State"]["Name"] == "running"
    assert time.sleeps == []
    # Throttling is botocore's to retry, in its standard mode.
    assert session.configs[0].retries["mode"] == "standard"
    assert launch_failure(session, REGION, GROUP) is None


@pytest.mark.usefixtures("pending_group")
def test_waits_while_the_launch_is_in_progress_then_returns_the_instance(
    session: boto3.Session, replay: Activities
) -> None:
    replay.items = [activity("PreInService")]
    time = FakeTime()
    autoscaling = session.client("autoscaling", region_name=REGION)

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        if len(time.sleeps) == 2:  # AWS fills the request during the second wait
            autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)

    instance = verify_spot_launch(
        session, REGION, GROUP, poll_interval=15, clock=time.clock, sleep=sleep
    )
    assert instance.startswith("i-")
    assert time.sleeps == [15, 15]
    assert replay.calls == 2


@pytest.mark.usefixtures("pending_group")
@pytest.mark.parametrize(
    ("message", "code", "capacity"),
    [
        (NO_CAPACITY, "InsufficientInstanceCapacity", True),
        (UNFULFILLABLE, "UnfulfillableCapacity", True),
        (PRICE_TOO_LOW, "SpotMaxPriceTooLow", True),
        (QUOTA, "MaxSpotInstanceCountExceeded", True),
        (ON_DEMAND_WORDING, "InsufficientInstanceCapacity", True),
        (NO_ADDRESSES, "InsufficientFreeAddressesInSubnet", False),
        (NO_IMAGE, "LaunchFailed", False),
    ],
)
def test_a_refused_launch_fails_at_once_with_aws_reason(
    session: boto3.Session, replay: Activities, message: str, code: str, capacity: bool
) -> None:
    # An older success does not hide the newest launch's failure.
    replay.items = [activity("Failed", message, minutes=5), activity("Successful", minutes=0)]
    time = FakeTime()
    with pytest.raises(SpotLaunchError) as raised:
        verify_spot_launch(session, REGION, GROUP, clock=time.clock, sleep=time.sleep)
    error = raised.value
    assert time.sleeps == []  # no waiting once AWS has said no
    assert (error.reason_code, error.capacity_failure) == (code, capacity)
    assert (error.group_name, error.region) == (GROUP, REGION)
    assert error.status_message == message
    assert isinstance(error, NoCapacityError) and error.exit_code == ExitCode.NO_CAPACITY
    text = str(error)
    assert text.startswith(f"the spot host did not launch in {REGION} (Auto Scaling group {GROUP})")
    assert message in text and "\n" not in text
    # The same failure is found after a failed `up`.
    found = launch_failure(session, REGION, GROUP)
    assert found is not None and (found.reason_code, found.status_message) == (code, message)


@pytest.mark.usefixtures("pending_group")
def test_the_error_says_what_to_do_about_a_max_price_below_the_market(
    session: boto3.Session, replay: Activities
) -> None:
    replay.items = [activity("Failed", PRICE_TOO_LOW)]
    time = FakeTime()
    with pytest.raises(SpotLaunchError, match=r"0\.0167\..*raise --spot-increase-rate"):
        verify_spot_launch(session, REGION, GROUP, clock=time.clock, sleep=time.sleep)


@pytest.mark.usefixtures("pending_group")
def test_a_cancelled_launch_without_a_message_is_a_failure_too(
    session: boto3.Session, replay: Activities
) -> None:
    cancelled = activity("Cancelled")
    cancelled["Description"] = "Launching a new EC2 instance"
    replay.items = [cancelled]
    failure = launch_failure(session, REGION, GROUP)
    assert failure is not None
    assert (failure.reason_code, failure.capacity_failure) == ("Cancelled", False)
    assert failure.status_message == "Launching a new EC2 instance"


@pytest.mark.usefixtures("pending_group")
def test_a_launch_that_never_completes_times_out_without_real_sleeping(
    session: boto3.Session, replay: Activities
) -> None:
    replay.items = [activity("WaitingForSpotInstanceId", "Placing Spot Instance request.")]
    time = FakeTime()
    with pytest.raises(SpotLaunchError) as raised:
        verify_spot_launch(
            session,
            REGION,
            GROUP,
            timeout=100,
            poll_interval=30,
            clock=time.clock,
            sleep=time.sleep,
        )
    error = raised.value
    assert time.sleeps == [30, 30, 30, 10]  # the last wait ends at the deadline
    assert error.reason_code == "timeout" and error.capacity_failure
    assert "no instance was in service after 1m40s" in str(error)
    assert "last activity: WaitingForSpotInstanceId (Placing Spot Instance request.)" in str(error)
    assert launch_failure(session, REGION, GROUP) is None  # nothing failed, it is just slow


def test_a_missing_group_is_an_operation_error_for_verify_and_none_after_a_failed_up(
    session: boto3.Session,
) -> None:
    time = FakeTime()
    with pytest.raises(OperationError, match=f"Auto Scaling group {GROUP} does not exist in"):
        verify_spot_launch(session, REGION, GROUP, clock=time.clock, sleep=time.sleep)
    assert launch_failure(session, REGION, GROUP) is None


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (PRICE_TOO_LOW, "SpotMaxPriceTooLow"),
        (
            "You have requested more vCPU capacity than your current vCPU limit of 32 allows "
            "for the instance bucket that the specified instance type belongs to.",
            "VcpuLimitExceeded",
        ),
        (
            "Your requested instance type (m7i.large) is not supported in your requested "
            "Availability Zone (eu-west-1c).",
            "Unsupported",
        ),
        ("Something else went wrong.", "LaunchFailed"),
    ],
)
def test_reason_codes_come_from_the_message_or_its_wording(message: str, code: str) -> None:
    assert parse_reason_code(message) == code


# -- the replacement of an interrupted instance ------------------------------------------


def _only_instance(session: boto3.Session) -> str:
    [group] = session.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP]
    )["AutoScalingGroups"]
    [instance] = group["Instances"]
    return str(instance["InstanceId"])


def test_the_groups_replacement_of_an_interrupted_instance_is_waited_for_and_returned(
    session: boto3.Session,
) -> None:
    make_group(session, desired=1)
    interrupted = _only_instance(session)
    autoscaling = session.client("autoscaling", region_name=REGION)
    time = FakeTime()

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        if len(time.sleeps) == 2:  # AWS reclaims it; the group launches another
            autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=interrupted, ShouldDecrementDesiredCapacity=False
            )

    replaced = wait_for_replacement(
        session, REGION, GROUP, interrupted, since=T0, clock=time.clock, sleep=sleep
    )
    assert replaced is not None and replaced.refused is None
    assert replaced.instance not in (None, interrupted)
    assert replaced.instance == _only_instance(session)
    # While the interrupted instance still ran in service, the wait went on.
    assert len(time.sleeps) == 2


@pytest.mark.usefixtures("pending_group")
def test_a_capacity_refusal_after_the_interruption_answers_at_once(
    session: boto3.Session, replay: Activities
) -> None:
    replay.items = [activity("Failed", NO_CAPACITY, minutes=3), activity("Successful")]
    time = FakeTime()
    replaced = wait_for_replacement(
        session, REGION, GROUP, "i-gone", since=T0 + timedelta(minutes=2),
        clock=time.clock, sleep=time.sleep,
    )  # fmt: skip
    assert replaced is not None and replaced.instance is None
    assert replaced.refused is not None
    assert replaced.refused.reason_code == "InsufficientInstanceCapacity"
    assert replaced.refused.capacity_failure
    assert "There is no Spot capacity available" in replaced.refused.message
    assert time.sleeps == []


@pytest.mark.usefixtures("pending_group")
def test_a_refusal_older_than_the_interruption_is_not_this_one_and_the_bound_ends_the_wait(
    session: boto3.Session, replay: Activities
) -> None:
    replay.items = [activity("Failed", NO_CAPACITY, minutes=0)]
    time = FakeTime()
    replaced = wait_for_replacement(
        session, REGION, GROUP, "i-gone", since=T0 + timedelta(minutes=1), timeout=60,
        poll_interval=15, clock=time.clock, sleep=time.sleep,
    )  # fmt: skip
    assert replaced is not None and replaced.refused is not None
    assert replaced.refused.reason_code == "timeout"
    assert replaced.refused.capacity_failure
    assert "no replacement of i-gone was in service after 1m0s" in replaced.refused.message
    assert sum(time.sleeps) == 60


def test_a_group_that_is_gone_is_an_error_not_no_capacity(session: boto3.Session) -> None:
    with pytest.raises(OperationError, match=f"Auto Scaling group {GROUP} does not exist"):
        wait_for_replacement(session, REGION, GROUP, "i-gone", since=T0, timeout=1)


@pytest.mark.usefixtures("pending_group")
def test_the_wait_ends_with_nothing_once_the_caller_gives_the_place_up(
    session: boto3.Session,
) -> None:
    time = FakeTime()
    asked: list[float] = []

    def breaker_opened() -> bool:
        asked.append(time.now)
        return len(asked) == 3

    replaced = wait_for_replacement(
        session, REGION, GROUP, "i-gone", since=T0, timeout=600, poll_interval=15,
        clock=time.clock, sleep=time.sleep, abandon=breaker_opened,
    )  # fmt: skip
    assert replaced is None
    assert time.sleeps == [15, 15]


def _launched_at(instance: str, moment: datetime) -> None:
    """Set moto's launch time of ``instance`` (moto answers it to the second only)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    ec2_backends[DEFAULT_ACCOUNT_ID][REGION].get_instance(instance).launch_time = moment


def test_with_the_interrupted_instance_still_in_service_its_replacement_is_the_hosts(
    session: boto3.Session,
) -> None:
    # Within AWS's two-minute warning the interrupted instance is still in service,
    # listed first, next to the replacement the group has launched.
    make_group(session, desired=1)
    interrupted = _only_instance(session)
    autoscaling = session.client("autoscaling", region_name=REGION)
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=2)
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    listed = [str(i["InstanceId"]) for i in group["Instances"]]
    assert listed[0] == interrupted
    replacement = listed[1]
    _launched_at(interrupted, T0)
    _launched_at(replacement, T0 + timedelta(minutes=3))
    time = FakeTime()
    assert verify_spot_launch(session, REGION, GROUP, clock=time.clock, sleep=time.sleep) == (
        replacement
    )
