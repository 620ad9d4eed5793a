"""The EventBridge envelope as the intake reads it (pure: no AWS, no database)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from typer.testing import CliRunner

from mapt.cli import app
from mapt.service import EventIntakeSettings, HostEventKind, UnusableMessage, parse_envelope

INSTANCE = "i-0123456789abcdef0"


def event(detail_type: str, **detail: Any) -> dict[str, Any]:
    """An event as AWS documents it (the spot interruption warning's example)."""
    return {
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-12-01T18:00:00Z",
        "region": "us-east-2",
        "resources": [f"arn:aws:ec2:us-east-2a:instance/{INSTANCE}"],
        "detail": {"instance-id": INSTANCE, **detail},
    }


WARNING = event("EC2 Spot Instance Interruption Warning", **{"instance-action": "terminate"})


def test_an_interruption_warning_is_read_whole() -> None:
    read = parse_envelope(json.dumps(WARNING))
    assert read.id == "12345678-1234-1234-1234-123456789012"
    assert read.kind is HostEventKind.INTERRUPTION_WARNING
    assert (read.region, read.instance_id, read.action, read.state) == (
        "us-east-2",
        INSTANCE,
        "terminate",
        None,
    )
    assert read.time == datetime(2026, 12, 1, 18, 0, tzinfo=timezone.utc)


def test_a_rebalance_recommendation_and_a_state_change_are_read() -> None:
    rebalance = parse_envelope(json.dumps(event("EC2 Instance Rebalance Recommendation")))
    assert (rebalance.kind, rebalance.action, rebalance.state) == (
        HostEventKind.REBALANCE_RECOMMENDATION,
        None,
        None,
    )
    change = parse_envelope(
        json.dumps(event("EC2 Instance State-change Notification", state="stopping"))
    )
    assert (change.kind, change.state) == (HostEventKind.STATE_CHANGE, "stopping")


def _without(key: str) -> dict[str, Any]:
    return {name: value for name, value in WARNING.items() if name != key}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON: "),
        ("[1, 2]", "not an EventBridge event: a JSON list"),
        (json.dumps({**WARNING, "source": "aws.autoscaling"}), "source 'aws.autoscaling' is not"),
        (json.dumps({**WARNING, "detail-type": "EC2 AMI State Change"}), "detail-type 'EC2 AMI"),
        (json.dumps(_without("id")), "id is missing or not a string"),
        (json.dumps({**WARNING, "region": "mars-1"}), "region 'mars-1' is not an AWS region"),
        (json.dumps({**WARNING, "time": "yesterday"}), "time 'yesterday' is not an RFC 3339"),
        (json.dumps({**WARNING, "time": "2026-12-01T18:00:00"}), "time '2026-12-01T18:00:00'"),
        (json.dumps(_without("detail")), "detail is missing or not an object"),
        (
            json.dumps({**WARNING, "detail": {"instance-id": "vol-1234"}}),
            "detail.instance-id 'vol-1234' is not an instance id",
        ),
        (
            json.dumps({**WARNING, "detail": {"instance-id": INSTANCE}}),
            "an interruption warning without detail.instance-action",
        ),
        (
            json.dumps(event("EC2 Instance State-change Notification")),
            "a state-change notification without detail.state",
        ),
        (
            json.dumps(event("EC2 Instance State-change Notification", state=3)),
            "detail.state 3 is not a string",
        ),
    ],
)
def test_what_is_not_a_usable_event_is_refused_with_its_reason(body: str, reason: str) -> None:
    with pytest.raises(UnusableMessage) as refused:
        parse_envelope(body)
    assert str(refused.value).startswith(reason)


def test_the_intake_is_off_by_default_and_its_settings_are_checked() -> None:
    assert not EventIntakeSettings().enabled
    assert EventIntakeSettings(follow_hosts=True).enabled
    with pytest.raises(ValueError, match=r"1\.\.20"):
        EventIntakeSettings(follow_hosts=True, wait_seconds=0)


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--event-regions", "us-east-1,mars-1"], "--event-regions item 'mars-1' is not an AWS"),
        (["--event-regions", "us-east-1,,eu-west-1"], "--event-regions 'us-east-1,,eu-west-1' has"),
        (["--event-poll-wait", "30s"], "--event-poll-wait 30s must be whole seconds from 1s"),
    ],
)
def test_bad_event_flags_of_mapt_serve_exit_2_naming_the_flag(
    flags: list[str], error: str, tmp_path: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = CliRunner().invoke(app, ["serve", "--port", "0", "--database-url", url, *flags])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {error}")
    assert not (tmp_path / "db.sqlite3").exists()
