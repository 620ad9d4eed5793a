"""What a spot host went through: the interruptions its Auto Scaling group recorded.

A spot host is a one-instance Auto Scaling group, and the group's activity history
(``DescribeScalingActivities``, kept by AWS for six weeks) says every time it took an
instance out of service and why, and every instance it launched. A termination's
``Description`` is ``Terminating EC2 instance: i-...`` and its ``Cause`` is worded
``At <time> an instance was taken out of service in response to <what>`` (AWS
Knowledge Center, "Why did Amazon EC2 Auto Scaling terminate an instance?",
https://repost.aws/knowledge-center/auto-scaling-instance-how-terminated); a launch's
``Description`` is ``Launching a new EC2 instance: i-...``. For an interruption,
``<what>`` names AWS's two signals by their documented names: a "Spot Instance
interruption notice" (EC2 User Guide, spot-instance-termination-notices) or an "EC2
instance rebalance recommendation" (EC2 User Guide, rebalance-recommendations; Auto
Scaling's capacity rebalancing acts on it), e.g.::

    At 2026-12-01T08:00:00Z an instance was taken out of service in response to an
    EC2 instance rebalance recommendation.

The match is on those phrases ("spot instance interruption", "rebalance
recommendation") inside a "taken out of service" cause, case and spacing aside, so a
change of article or punctuation still matches; any other termination (a health
check, a user's request, a scale-in) is not an interruption.

In a one-instance group each instance is replaced by the next one launched after it:
after its termination for an interruption notice, before it for a rebalance
recommendation (capacity rebalancing launches first). So an interrupted instance's
replacement is the first successful launch after its own; when its own launch is
older than the history, the first launch after it was taken out of service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from mapt.core import translating_aws_errors

InterruptionKind = Literal["spot-interruption", "rebalance-recommendation"]

_WHITESPACE = re.compile(r"\s+")
_INSTANCE = re.compile(r"\bi-[0-9a-f]{8,17}\b")
_CAUSES: tuple[tuple[str, InterruptionKind], ...] = (
    ("spot instance interruption", "spot-interruption"),
    ("rebalance recommendation", "rebalance-recommendation"),
)
_NOT_LAUNCHED = ("Failed", "Cancelled")


@dataclass(frozen=True)
class GroupInterruption:
    """An interruption seen in a spot group's activity history (for ``mapt aws host
    status``): an instance AWS took out of service for spot, and the instance that
    replaced it. Not ``mapt.hosts.Interruption``, the breaker's record of an event heard."""

    at: datetime
    instance: str
    kind: InterruptionKind
    cause: str
    replacement: str | None = None
    replaced_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "instance": self.instance,
            "kind": self.kind,
            "cause": self.cause,
            "replacement": self.replacement,
            "replaced_at": _iso(self.replaced_at),
        }


def group_interruptions(
    session: Any, region: str, group_name: str
) -> tuple[GroupInterruption, ...]:
    """The interruptions in ``group_name``'s activity history, oldest first (module doc).

    Every page of the history is read (botocore's paginator); a failure to ask AWS is
    raised (``OperationError`` and its kind), never taken for a quiet history.
    """
    client = session.client("autoscaling", region_name=region)
    with translating_aws_errors("DescribeScalingActivities", region=region):
        pages = client.get_paginator("describe_scaling_activities").paginate(
            AutoScalingGroupName=group_name
        )
        activities = [activity for page in pages for activity in page["Activities"]]
    activities.sort(key=lambda activity: activity["StartTime"])
    launches = [
        (activity["StartTime"], instance)
        for activity in activities
        if _said(activity, "Description").startswith("launching")
        and activity.get("StatusCode") not in _NOT_LAUNCHED
        and (instance := _instance(activity)) is not None
    ]
    found = []
    for activity in activities:
        kind = _interruption_kind(activity)
        instance = _instance(activity)
        if kind is None or instance is None:
            continue
        launched = next((at for at, launch in launches if launch == instance), None)
        since = activity["StartTime"] if launched is None else launched
        replacement = next(
            ((at, launch) for at, launch in launches if at > since and launch != instance), None
        )
        found.append(
            GroupInterruption(
                at=activity["StartTime"],
                instance=instance,
                kind=kind,
                cause=_WHITESPACE.sub(" ", str(activity.get("Cause", ""))).strip(),
                replacement=None if replacement is None else replacement[1],
                replaced_at=None if replacement is None else replacement[0],
            )
        )
    return tuple(found)


def _interruption_kind(activity: dict[str, Any]) -> InterruptionKind | None:
    if not _said(activity, "Description").startswith("terminating"):
        return None
    cause = _said(activity, "Cause")
    if "taken out of service" not in cause:
        return None
    return next((kind for phrase, kind in _CAUSES if phrase in cause), None)


def _said(activity: dict[str, Any], field: str) -> str:
    """``field`` of the activity, lower-case, its spaces collapsed."""
    return _WHITESPACE.sub(" ", str(activity.get(field, ""))).strip().lower()


def _instance(activity: dict[str, Any]) -> str | None:
    found = _INSTANCE.search(str(activity.get("Description", "")))
    return None if found is None else found.group(0)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
