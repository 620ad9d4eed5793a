"""The EventBridge envelope as the intake reads it (pure), the event flags of ``mapt
serve``, and one message through the intake in-process (moto, a SQLite file)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from mapt.cli import app
from mapt.service import (
    Database,
    EventIntake,
    EventIntakeSettings,
    HostEvent,
    HostEventKind,
    LeaderContext,
    UnusableMessage,
    open_database,
    parse_envelope,
)
from mapt.service._event_intake import EventCounts
from mapt.service._hosts import Hosts
from mapt.service._schema import host_events, hosts
from mapt.targets.aws import EventQueues
from tests.harness.images import publish_image
from tests.harness.spot_market import ApiCallLog, installed

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


# -- one message through the intake, in-process (moto's SQS and EC2, a SQLite file) ------------
class _Handed:
    """The hand-off the intake calls for each new event, remembered."""

    def __init__(self) -> None:
        self.events: list[HostEvent] = []

    def __call__(self, store: Hosts, connection: sa.Connection, event: HostEvent) -> None:
        assert connection.in_transaction()
        self.events.append(event)


def _intake_world(tmp_path: Path) -> tuple[Database, EventQueues, str]:
    """A database with host ``ev-1``, its instance on moto, and queues; no stack."""
    database = open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    now = datetime.now(timezone.utc)
    with database.transaction() as connection:
        connection.execute(
            hosts.insert().values(
                name="ev-1", state="RUNNING", fields={}, created_at=now, updated_at=now,
                pool="warm",
            )
        )  # fmt: skip
    ec2 = boto3.client("ec2", region_name="us-east-2")
    image = publish_image("us-east-2", "fedora-test", "125523088429")
    instance = ec2.run_instances(
        ImageId=image,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "mapt:project", "Value": "ev-1"}]}
        ],
    )["Instances"][0]["InstanceId"]
    sqs = boto3.client("sqs", region_name="us-east-2")
    # No visibility timeout: a message left is received again at once.
    intake = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "0"})
    dead = sqs.create_queue(QueueName="dead-letters")
    queues = EventQueues("us-east-2", intake["QueueUrl"], dead["QueueUrl"], "arn:rule")
    return database, queues, instance


def _context(database: Database) -> LeaderContext:
    return LeaderContext(database, None, "test", leading=lambda: True, submitted=lambda: None)


def _throttled(model: Any, **_: Any) -> None:
    raise ClientError(
        {"Error": {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}},
        model.name,
    )


def test_an_event_ec2_cannot_be_asked_about_waits_for_the_next_poll_then_is_recorded_once(
    aws: ApiCallLog, tmp_path: Path
) -> None:
    database, queues, instance = _intake_world(tmp_path)
    sqs = boto3.client("sqs", region_name="us-east-2")
    body = {**WARNING, "detail": {"instance-id": instance, "instance-action": "terminate"}}
    sqs.send_message(QueueUrl=queues.queue_url, MessageBody=json.dumps(body))
    settings = EventIntakeSettings(regions=("us-east-2",), wait_seconds=1)
    handed = _Handed()
    try:
        with installed([("before-call.ec2.DescribeInstances", _throttled)]):
            throttled = EventIntake(settings, handed, counts=EventCounts())
            throttled.poll(_context(database), queues)
        with database.transaction() as connection:
            assert connection.execute(sa.select(host_events)).all() == []
        assert handed.events == []
        left = sqs.receive_message(QueueUrl=queues.queue_url, WaitTimeSeconds=1)["Messages"]
        assert [json.loads(m["Body"])["id"] for m in left] == [WARNING["id"]]
        assert "Messages" not in sqs.receive_message(QueueUrl=queues.dead_letter_url)

        counts = EventCounts()
        EventIntake(settings, handed, counts=counts).poll(_context(database), queues)
        [event] = handed.events
        assert (event.id, event.kind, event.host, event.pool, event.instance_id) == (
            WARNING["id"],
            HostEventKind.INTERRUPTION_WARNING,
            "ev-1",
            "warm",
            instance,
        )
        assert (event.region, event.action, event.zone) == ("us-east-2", "terminate", "us-east-2a")
        with database.transaction() as connection:
            [row] = connection.execute(sa.select(host_events)).mappings().all()
        assert HostEvent.from_row(row) == event
        assert "Messages" not in sqs.receive_message(QueueUrl=queues.queue_url)
        assert counts.snapshot() == {("interruption-warning", "recorded"): 1}
    finally:
        database.dispose()
