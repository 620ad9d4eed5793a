"""``mapt aws host status``: where a host runs, and the spot interruptions it went through.

State is a checkpoint file as a create writes it; AWS is moto in-process. moto's Auto
Scaling never interrupts an instance, so the group's activity history is written into
its ``DescribeScalingActivities`` answers (after-call, newest first and in pages, as
AWS answers), in AWS's own wording; the command reads it through botocore's paginator.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.spot_market import installed
from tests.stacks.test_inventory import checkpoint, write_files

runner = CliRunner()
ZONE = "us-east-1a"
SPOT = {
    "region": "us-east-1",
    "availability_zone": ZONE,
    "instance_types": ["m6i.large"],
    "spot": True,
    "os": "fedora",
    "host": "203.0.113.7",
    "asg_name": "mapt-host-pr-7",
}
FIRST, SECOND, THIRD, FOURTH = (
    f"i-0{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}{n}" for n in "1234"
)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, second, tzinfo=timezone.utc)


def activity(
    moment: datetime, description: str, cause: str, status: str = "Successful"
) -> dict[str, Any]:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "ActivityId": f"activity-{stamp}",
        "AutoScalingGroupName": "mapt-host-pr-7",
        "Description": description,
        "Cause": f"At {stamp} {cause}",
        "StartTime": moment,
        "EndTime": moment,
        "StatusCode": status,
        "Progress": 100,
    }


def launched(moment: datetime, instance: str, cause: str = "") -> dict[str, Any]:
    return activity(
        moment,
        f"Launching a new EC2 instance: {instance}",
        cause
        or "an instance was started in response to a difference between desired and "
        "actual capacity, increasing the capacity from 0 to 1.",
    )


def terminated(moment: datetime, instance: str, cause: str) -> dict[str, Any]:
    return activity(moment, f"Terminating EC2 instance: {instance}", cause)


# Oldest first here; answered newest first. The first instance gets AWS's two-minute
# notice and is replaced after; the second gets a rebalance recommendation, and capacity
# rebalancing launches its replacement before taking it out of service; the third fails
# a health check (not an interruption); one launch was refused on the way.
HISTORY = [
    launched(at(8), FIRST),
    terminated(
        at(9),
        FIRST,
        "an instance was taken out of service in response to a Spot Instance interruption notice.",
    ),
    activity(
        at(9, 0, 30),
        "Launching a new EC2 instance.  Status Reason: There is no Spot "
        "capacity available that matches your request.",
        "an instance was started in response to a difference between desired and actual capacity.",
        "Failed",
    ),
    launched(at(9, 1, 10), SECOND),
    launched(
        at(10, 30),
        THIRD,
        "an instance was launched in response to an EC2 instance rebalance recommendation.",
    ),
    terminated(
        at(10, 33),
        SECOND,
        "an instance was taken out of service in response to an "
        "EC2 instance rebalance  recommendation.",
    ),
    terminated(
        at(11),
        THIRD,
        "an instance was taken out of service in response to an EC2 "
        "health check indicating it has been terminated or stopped.",
    ),
    launched(at(11, 1), FOURTH),
]


class ActivityHistory:
    """Answers ``DescribeScalingActivities`` with ``activities``, newest first, 3 a page;
    records the region (``regions``) and group (``groups``) each call asked about."""

    def __init__(self, activities: list[dict[str, Any]]) -> None:
        newest = sorted(activities, key=lambda a: a["StartTime"], reverse=True)
        self.pages = [newest[i : i + 3] for i in range(0, len(newest), 3)] or [[]]
        self.regions: list[str | None] = []
        self.groups: list[str | None] = []

    def answer(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        page = len(self.regions)
        self.regions.append(context.get("client_region"))
        parsed["Activities"] = self.pages[page]
        parsed.pop("NextToken", None)
        if page + 1 < len(self.pages):
            parsed["NextToken"] = f"page-{page + 2}"

    def asked(self, params: dict[str, Any], **_: Any) -> None:
        self.groups.append(params.get("AutoScalingGroupName"))


def status(tmp_path: Path, outputs: dict[str, Any], history: ActivityHistory, *extra: str) -> Any:
    write_files(
        tmp_path,
        {".pulumi/stacks/pr-7/host-pr-7.json": checkpoint("pr-7", "host-pr-7", outputs, 12)},
    )
    hooks = [
        ("after-call.autoscaling.DescribeScalingActivities", history.answer),
        ("before-parameter-build.autoscaling.DescribeScalingActivities", history.asked),
    ]
    with installed(hooks):
        return runner.invoke(
            app,
            [
                "aws",
                "host",
                "status",
                "--project-name",
                "pr-7",
                "--backed-url",
                f"file://{tmp_path}",
                *extra,
            ],
        )


def test_two_interruptions_and_their_replacements_are_listed_in_order(
    aws: Any, tmp_path: Path
) -> None:
    history = ActivityHistory(HISTORY)
    result = status(tmp_path, SPOT, history)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"pr-7: spot host in us-east-1 ({ZONE}), address 203.0.113.7",
        "interruptions: 2 (group mapt-host-pr-7)",
        f"  2026-12-01 09:00:00Z  {FIRST}  spot interruption notice: replaced by {SECOND} "
        "at 2026-12-01 09:01:10Z",
        f"  2026-12-01 10:33:00Z  {SECOND}  rebalance recommendation: replaced by {THIRD} "
        "at 2026-12-01 10:30:00Z",
    ]
    # Every page of the group's history was read, in the host's region.
    assert history.regions == ["us-east-1"] * 3
    assert history.groups == ["mapt-host-pr-7"] * 3

    document = json.loads(
        status(tmp_path, SPOT, ActivityHistory(HISTORY), "--output", "json").stdout
    )
    assert (document["project"], document["spot"], document["group"]) == (
        "pr-7",
        True,
        "mapt-host-pr-7",
    )
    assert document["interruptions_apply"] is True
    assert document["interruptions"] == [
        {
            "at": "2026-12-01T09:00:00Z",
            "instance": FIRST,
            "kind": "spot-interruption",
            "cause": "At 2026-12-01T09:00:00Z an instance was taken out of service in response "
            "to a Spot Instance interruption notice.",
            "replacement": SECOND,
            "replaced_at": "2026-12-01T09:01:10Z",
        },
        {
            "at": "2026-12-01T10:33:00Z",
            "instance": SECOND,
            "kind": "rebalance-recommendation",
            "cause": "At 2026-12-01T10:33:00Z an instance was taken out of service in response "
            "to an EC2 instance rebalance recommendation.",
            "replacement": THIRD,
            "replaced_at": "2026-12-01T10:30:00Z",
        },
    ]


def test_a_spot_host_never_interrupted_says_so(aws: Any, tmp_path: Path) -> None:
    quiet = [launched(at(8), FIRST)]
    result = status(tmp_path, SPOT, ActivityHistory(quiet))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "interruptions: none in the activity history of group mapt-host-pr-7"
    ]
    document = json.loads(status(tmp_path, SPOT, ActivityHistory(quiet), "--output", "json").stdout)
    assert (document["interruptions_apply"], document["interruptions"]) == (True, [])


def test_an_on_demand_host_is_not_interrupted_and_auto_scaling_is_not_asked(
    aws: Any, tmp_path: Path
) -> None:
    on_demand = {**SPOT, "spot": False}
    history = ActivityHistory(HISTORY)
    result = status(tmp_path, on_demand, history)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"pr-7: on-demand host in us-east-1 ({ZONE}), address 203.0.113.7",
        "interruptions: none apply (an on-demand host is not interrupted)",
    ]
    document = json.loads(status(tmp_path, on_demand, history, "--output", "json").stdout)
    assert (document["interruptions_apply"], document["interruptions"]) == (False, None)
    assert history.regions == history.groups == []


def test_a_project_without_a_host_is_exit_2(aws: Any, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["aws", "host", "status", "--project-name", "nobody", "--backed-url", f"file://{tmp_path}"],
    )
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: project 'nobody' has no host")
