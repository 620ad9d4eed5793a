"""Did the spot host launch? Wait for its Auto Scaling group, and say why when it did not.

The host program creates the group without waiting for capacity, so ``up`` returns as
soon as the group exists. ``verify_spot_launch`` then waits for an instance in service
and reads the group's scaling activities meanwhile: a launch AWS refused comes back
at once as a ``SpotLaunchError`` carrying AWS's reason (``InsufficientInstanceCapacity``,
``SpotMaxPriceTooLow``...), instead of a provider timeout after many minutes, and its
``capacity_failure`` tells a caller whether another zone, region or instance type may
succeed where this one failed.

Throttled calls are retried by botocore's ``standard`` retry mode; the only loop here
is the wait for the instance. Imports boto3 only when called.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mapt.core import (
    NoCapacityError,
    OperationError,
    format_duration,
    get_logger,
    translating_aws_errors,
)

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_autoscaling.client import AutoScalingClient

log = get_logger(__name__)

DEFAULT_LAUNCH_TIMEOUT = 600.0
DEFAULT_POLL_INTERVAL = 15.0
# The reason code of a launch that did not succeed or fail before the timeout.
REASON_TIMEOUT = "timeout"
# Failures that say nothing is wrong with the request itself, only with this market
# (zone, instance types, price, regional quota) right now, so another may succeed.
# InsufficientFreeAddressesInSubnet is left out: the host's subnet is mapt's own /24
# holding a handful of addresses, so running out means something else is wrong.
CAPACITY_REASONS = frozenset(
    {
        "InsufficientInstanceCapacity",
        "UnfulfillableCapacity",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        REASON_TIMEOUT,
    }
)
_FAILED_STATUSES = ("Failed", "Cancelled")
# "Could not launch Spot Instances. SpotMaxPriceTooLow - Your Spot request price..."
_REASON_CODE = re.compile(r"\b([A-Z][A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*) - ")
# Messages AWS writes without a code (on-demand wording, subnet and quota errors).
_REASON_PHRASES = (
    ("sufficient", "capacity", "InsufficientInstanceCapacity"),
    ("no spot capacity", "", "InsufficientInstanceCapacity"),
    ("not enough free addresses", "", "InsufficientFreeAddressesInSubnet"),
    ("vcpu limit", "", "VcpuLimitExceeded"),
    ("is not supported in your requested availability zone", "", "Unsupported"),
)
_HINTS = {
    "InsufficientInstanceCapacity": (
        "AWS has no spot capacity for these instance types in this zone right now: try "
        "again later, or allow more instance types."
    ),
    "UnfulfillableCapacity": (
        "AWS cannot fill this request with these instance types in this zone right now: "
        "try again later, or allow more instance types."
    ),
    "SpotMaxPriceTooLow": (
        "The market price is above the max price: raise --spot-increase-rate, or run on-demand."
    ),
    "MaxSpotInstanceCountExceeded": (
        "The account's spot quota in this region is used up: end other spot instances, "
        "or ask AWS for a higher 'All Standard Spot Instance Requests' quota."
    ),
}


class SpotLaunchError(NoCapacityError):
    """The spot host's Auto Scaling group did not get its instance in service.

    ``reason_code`` is AWS's error code for the failed launch (``timeout`` when none
    came before the deadline) and ``status_message`` AWS's own words, which the
    message repeats.
    """

    def __init__(
        self,
        *,
        reason_code: str,
        status_message: str,
        group_name: str,
        region: str,
    ) -> None:
        self.reason_code = reason_code
        self.status_message = status_message
        self.group_name = group_name
        self.region = region
        super().__init__(
            f"the spot host did not launch in {region} (Auto Scaling group {group_name}): "
            f"{_one_line(status_message)}",
            hint=_HINTS.get(reason_code),
        )

    @property
    def capacity_failure(self) -> bool:
        """Whether the market, not the request, failed: another may succeed."""
        return self.reason_code in CAPACITY_REASONS


def verify_spot_launch(
    session: boto3.Session,
    region: str,
    group_name: str,
    *,
    timeout: float = DEFAULT_LAUNCH_TIMEOUT,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait until the group has an instance in service; return its instance id.

    Raises ``SpotLaunchError`` as soon as the group's newest launch activity failed,
    or with reason ``timeout`` when ``timeout`` seconds pass without an instance in
    service; ``OperationError`` when the group does not exist or AWS cannot be asked.
    """
    client = _client(session, region)
    start = clock()
    while True:
        group = _group(client, region, group_name)
        if group is None:
            raise OperationError(
                f"Auto Scaling group {group_name} does not exist in {region}",
                hint="It is created by the host stack's `up`; check that it succeeded.",
            )
        instance = _instance_in_service(session, region, group)
        if instance is not None:
            log.info("spot host %s is in service in group %s", instance, group_name)
            return instance
        activity = _newest_launch(_activities(client, region, group_name))
        failure = _failure(activity, group_name=group_name, region=region)
        if failure is not None:
            raise failure
        elapsed = clock() - start
        if elapsed >= timeout:
            waited = format_duration(timedelta(seconds=round(timeout)))
            last = "no launch activity yet"
            if activity is not None:
                last = f"last activity: {activity.get('StatusCode')}"
                if activity.get("StatusMessage"):
                    last += f" ({_one_line(str(activity['StatusMessage']))})"
            raise SpotLaunchError(
                reason_code=REASON_TIMEOUT,
                status_message=f"no instance was in service after {waited}; {last}",
                group_name=group_name,
                region=region,
            )
        log.debug("waiting for an instance in group %s (%.0f s so far)", group_name, elapsed)
        sleep(min(poll_interval, timeout - elapsed))


# How long an interrupted spot host's group is given to launch its replacement in place
# before the host is moved: AWS's warning comes two minutes ahead, and a group that has
# capacity launches a replacement within a minute or two of the reclaim (or of the
# rebalance recommendation, with capacity rebalancing); five minutes leaves room for a
# slow launch without keeping a CI job waiting for a place that has no capacity.
DEFAULT_REPLACEMENT_TIMEOUT = 300.0


@dataclass(frozen=True)
class GroupReplacement:
    """What an interrupted spot host's group did: launched ``instance`` in its place, or
    could not (``refused``: AWS's failed launch, or reason ``timeout``)."""

    instance: str | None = None
    refused: SpotLaunchError | None = None

    def __post_init__(self) -> None:
        if (self.instance is None) == (self.refused is None):
            raise ValueError("a replacement has either an instance or a refusal")


def wait_for_replacement(
    session: boto3.Session,
    region: str,
    group_name: str,
    interrupted: str,
    *,
    since: datetime,
    timeout: float = DEFAULT_REPLACEMENT_TIMEOUT,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    abandon: Callable[[], bool] | None = None,
) -> GroupReplacement | None:
    """Wait until the group has a replacement for instance ``interrupted`` (in service,
    healthy, running in EC2), or says it cannot launch one.

    A launch activity that failed after ``since`` (the interruption) answers at once
    with AWS's reason (``InsufficientInstanceCapacity``: the place has no capacity);
    after ``timeout`` seconds without either, the refusal's reason is ``timeout``.
    ``abandon`` is asked before each wait: True ends it with None (the caller no
    longer wants this place: its circuit breaker opened). ``OperationError`` when the
    group is gone or AWS cannot be asked: unknown is not "no capacity".
    """
    from mapt.targets.aws._health import running_members

    client = _client(session, region)
    start = clock()
    while True:
        group = _group(client, region, group_name)
        if group is None:
            raise OperationError(f"Auto Scaling group {group_name} does not exist in {region}")
        replacements = [i for i in running_members(session, region, group) if i != interrupted]
        if replacements:
            log.info("group %s replaced %s with %s", group_name, interrupted, replacements[0])
            return GroupReplacement(instance=replacements[0])
        recent = [
            activity
            for activity in _activities(client, region, group_name)
            if _aware(activity["StartTime"]) >= since
        ]
        failure = _failure(_newest_launch(recent), group_name=group_name, region=region)
        if failure is not None:
            return GroupReplacement(refused=failure)
        elapsed = clock() - start
        if elapsed >= timeout:
            waited = format_duration(timedelta(seconds=round(timeout)))
            return GroupReplacement(
                refused=SpotLaunchError(
                    reason_code=REASON_TIMEOUT,
                    status_message=f"no replacement of {interrupted} was in service after {waited}",
                    group_name=group_name,
                    region=region,
                )
            )
        if abandon is not None and abandon():
            log.info("no longer waiting for a replacement of %s in %s", interrupted, group_name)
            return None
        log.debug("waiting for a replacement of %s in group %s", interrupted, group_name)
        sleep(min(poll_interval, timeout - elapsed))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def launch_failure(session: boto3.Session, region: str, group_name: str) -> SpotLaunchError | None:
    """Why the group's newest launch failed, or None if it did not (or there is no group).

    For a caller whose ``up`` failed: it tells a refused launch (worth trying
    elsewhere when ``capacity_failure``) from any other failure.
    """
    client = _client(session, region)
    if _group(client, region, group_name) is None:
        return None
    activity = _newest_launch(_activities(client, region, group_name))
    return _failure(activity, group_name=group_name, region=region)


def parse_reason_code(status_message: str) -> str:
    """AWS's error code in a scaling activity's status message (``LaunchFailed`` if none)."""
    found = _REASON_CODE.search(status_message)
    if found is not None:
        return found.group(1)
    lowered = status_message.lower()
    for first, second, code in _REASON_PHRASES:
        if first in lowered and second in lowered:
            return code
    return "LaunchFailed"


def _failure(
    activity: Mapping[str, Any] | None, *, group_name: str, region: str
) -> SpotLaunchError | None:
    if activity is None or activity.get("StatusCode") not in _FAILED_STATUSES:
        return None
    status = str(activity["StatusCode"])
    aws_message = str(activity.get("StatusMessage") or "")
    # Without AWS's words, the status (Cancelled) is the reason and the description
    # says what was cancelled.
    return SpotLaunchError(
        reason_code=parse_reason_code(aws_message) if aws_message else status,
        status_message=aws_message or str(activity.get("Description") or status),
        group_name=group_name,
        region=region,
    )


def _newest_launch(activities: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest activity that launches an instance (AWS lists newest first)."""
    launches = [a for a in activities if str(a.get("Description", "")).startswith("Launching")]
    if not launches:
        return None
    return max(launches, key=lambda a: a["StartTime"])


def _instance_in_service(
    session: boto3.Session, region: str, group: Mapping[str, Any]
) -> str | None:
    """The group's instance in service: with more than one (an interrupted instance in
    its last two minutes next to its replacement), the newest running one, not the
    first AWS lists, which would point the host at the machine being taken back."""
    from mapt.targets.aws._health import running_members

    in_service = [
        str(instance["InstanceId"])
        for instance in group.get("Instances", [])
        if instance.get("LifecycleState") == "InService"
    ]
    if len(in_service) < 2:
        return in_service[0] if in_service else None
    running = running_members(session, region, group)
    return running[0] if running else None


def _client(session: boto3.Session, region: str) -> AutoScalingClient:
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 8})
    return session.client("autoscaling", region_name=region, config=config)


def _group(client: AutoScalingClient, region: str, group_name: str) -> dict[str, Any] | None:
    with translating_aws_errors("DescribeAutoScalingGroups", region=region):
        groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])
    found = groups["AutoScalingGroups"]
    return dict(found[0]) if found else None


def _activities(client: AutoScalingClient, region: str, group_name: str) -> list[dict[str, Any]]:
    with translating_aws_errors("DescribeScalingActivities", region=region):
        answer = client.describe_scaling_activities(AutoScalingGroupName=group_name, MaxRecords=20)
    return [dict(activity) for activity in answer["Activities"]]


def _one_line(text: str) -> str:
    return " ".join(text.split())
