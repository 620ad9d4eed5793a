"""The event-intake program: under Pulumi mocks (what it declares), and made on moto
in-process through the sandbox kinds (EventBridge routes an EC2 event to the queue)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mapt.core import InputError, OperationError, StateLockedError
from mapt.stacks import InMemoryEngine, StackSummary, run_program
from mapt.targets.aws import (
    DETAIL_TYPES,
    INTAKE_REVISION,
    SANDBOX_KINDS,
    ensure_event_intake,
    event_intake_program,
    event_intake_regions,
    events_stack_ref,
    remove_event_intake,
)
from tests.harness.pulumi_mocks import PulumiHarness
from tests.harness.spot_market import ApiCallLog
from tests.targets.test_aws_sandbox import ApplyingMocks, Endpoint

REGION = "eu-west-1"
QUEUE = "aws:sqs/queue:Queue"
POLICY = "aws:sqs/queuePolicy:QueuePolicy"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"


def by_name(resources: Any) -> dict[str, Any]:
    return {resource.name: resource for resource in resources}


def test_the_program_routes_the_three_ec2_events_to_a_queue_only_the_rule_may_send_to() -> None:
    run = PulumiHarness(REGION).run(event_intake_program(REGION, tags={"team": "qe"}))
    made = by_name(run.resources)
    assert {made[name].type for name in ("dead-letters", "events")} == {QUEUE}
    rule, target, policy = made["ec2-events"], made["events-queue"], made["events-from-rule"]
    assert (rule.type, target.type, policy.type) == (RULE, TARGET, POLICY)
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.ec2"],
        "detail-type": [
            "EC2 Spot Instance Interruption Warning",
            "EC2 Instance Rebalance Recommendation",
            "EC2 Instance State-change Notification",
        ],
    }
    queue = made["events"].inputs
    assert queue["receiveWaitTimeSeconds"] == 20
    redrive = json.loads(queue["redrivePolicy"])
    assert redrive["deadLetterTargetArn"].startswith("arn:aws:sqs:")
    assert redrive["maxReceiveCount"] >= 1
    [statement] = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    rule_arn = "arn:aws:events:us-east-1:123456789012:rule/mapt-test"  # the mocks' answer
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    for resource in (made["dead-letters"], made["events"], rule):
        assert resource.inputs["tags"]["mapt:project"] == "mapt-events"
        assert resource.inputs["tags"]["mapt:stack"] == "events-eu-west-1-mapt-events"
        assert resource.inputs["tags"]["team"] == "qe"
    assert run.plain_outputs()["revision"] == INTAKE_REVISION
    assert set(run.plain_outputs()) == {
        "queue_url", "queue_arn", "dead_letter_url", "rule_arn", "revision",
    }  # fmt: skip
    for resource in run.resources:
        if not resource.type.startswith("pulumi:providers:"):
            kind = SANDBOX_KINDS.get(resource.type)
            assert kind is not None, f"no sandbox kind for {resource.type}"
            assert set(resource.inputs) <= kind.inputs, (resource.type, resource.name)


def test_the_stack_is_named_per_region_in_the_mapt_events_project() -> None:
    ref = events_stack_ref("us-west-2", "file:///tmp/state")
    assert (ref.project, ref.stack_name) == ("mapt-events", "events-us-west-2-mapt-events")


def test_a_bad_region_is_refused_before_any_stack_is_touched() -> None:
    engine = InMemoryEngine()
    with pytest.raises(InputError, match="'mars-1'"):
        ensure_event_intake(engine, ["us-east-1", "mars-1"])
    assert not engine.exists(events_stack_ref("us-east-1"))


class CountingEngine(InMemoryEngine):
    """An in-memory backend that counts the ``up``s run on it."""

    def __init__(self) -> None:
        super().__init__()
        self.ups: list[str] = []

    def up(self, ref: Any, program: Any, **options: Any) -> dict[str, Any]:
        self.ups.append(ref.stack_name)
        return super().up(ref, program, **options)


def test_a_stack_of_this_revision_is_reused_without_an_up_and_an_older_one_is_updated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))  # the backend-less stacks
    engine = CountingEngine()
    backend = f"file://{tmp_path / 'events'}"
    first = ensure_event_intake(engine, [REGION, "us-east-2"], backend_url=backend)
    assert engine.ups == ["events-eu-west-1-mapt-events", "events-us-east-2-mapt-events"]
    assert ensure_event_intake(engine, [REGION], backend_url=backend) == {REGION: first[REGION]}
    assert len(engine.ups) == 2
    # Another backend is another stack.
    ensure_event_intake(engine, [REGION])
    assert len(engine.ups) == 3

    # A stack an older mapt made (no revision recorded) is brought up to date, once.
    older = events_stack_ref("us-east-2", backend)
    outputs = {k: v for k, v in engine.outputs(older).items() if k != "revision"}

    def older_program() -> None:
        import pulumi

        for key, value in outputs.items():
            pulumi.export(key, value)

    engine.up(older, older_program)
    ensure_event_intake(engine, ["us-east-2"], backend_url=backend)
    ensure_event_intake(engine, ["us-east-2"], backend_url=backend)
    assert engine.ups[-2:] == ["events-us-east-2-mapt-events"] * 2
    assert engine.outputs(older)["revision"] == INTAKE_REVISION

    # A refresh (a queue gone from AWS) never reuses.
    ensure_event_intake(engine, [REGION], backend_url=backend, refresh=True)
    assert engine.ups[-1] == "events-eu-west-1-mapt-events"


def test_removal_destroys_each_named_regions_stack_and_lists_what_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))  # the backend-less stacks
    engine = InMemoryEngine()
    backend = f"file://{tmp_path / 'events'}"
    ensure_event_intake(engine, [REGION, "us-east-2"], backend_url=backend)
    assert event_intake_regions(engine, backend) == [REGION, "us-east-2"]
    assert event_intake_regions(engine, None) == []
    assert remove_event_intake(engine, ["us-east-2", "ap-south-1"], backend_url=backend) == {
        "us-east-2": True,
        "ap-south-1": False,
    }
    assert event_intake_regions(engine, backend) == [REGION]
    with pytest.raises(InputError, match="'mars-1'"):
        remove_event_intake(engine, [REGION, "mars-1"], backend_url=backend)
    assert event_intake_regions(engine, backend) == [REGION]


class ThenUnreadable(InMemoryEngine):
    """An engine whose backend shows an unreadable entry of the events project once a
    stack has been destroyed (another region's checkpoint, corrupted meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.destroyed = False
        self.purged: list[str] = []

    def destroy(self, ref: Any, **options: Any) -> bool:
        self.destroyed = True
        return super().destroy(ref, **options)

    def list_stacks(self, backend_url: str | None) -> list[StackSummary]:
        listed = list(super().list_stacks(backend_url))
        if self.destroyed:
            name = "events-ap-south-1-mapt-events"
            where = "/state/ap-south-1.json"
            listed.append(StackSummary("mapt-events", name, None, 0, unreadable="not JSON",
                                       location=where))  # fmt: skip
        return listed

    def purge_project_state(self, backend_url: str | None, project: str) -> None:
        self.purged.append(project)
        super().purge_project_state(backend_url, project)


class ThenLocked(ThenUnreadable):
    """An engine whose backend is locked by another teardown once a stack is destroyed."""

    def list_stacks(self, backend_url: str | None) -> list[StackSummary]:
        if self.destroyed:
            raise StateLockedError("the backend is locked by another teardown", hint="wait for it")
        return list(InMemoryEngine.list_stacks(self, backend_url))


@pytest.mark.parametrize(
    ("engine", "kind", "then"),
    [
        (ThenUnreadable(), OperationError,
         "cannot read the event-intake state at /state/ap-south-1.json: not JSON"),
        (ThenLocked(), StateLockedError, "the backend is locked by another teardown"),
    ],
)  # fmt: skip
def test_a_teardown_that_then_cannot_list_what_is_left_fails_naming_what_it_removed(
    engine: ThenUnreadable,
    kind: type[Exception],
    then: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unreadable entry or a lock found after the destroys fails the teardown with its
    own kind (exit 1, exit 3), saying what was already removed; nothing is purged."""
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))
    backend = f"file://{tmp_path / 'events'}"
    ensure_event_intake(engine, [REGION], backend_url=backend)
    with pytest.raises(kind) as failed:
        remove_event_intake(engine, [REGION], backend_url=backend)
    assert str(getattr(failed.value, "message", "")) == (
        f"removed the event intake of eu-west-1, then {then}; what Pulumi keeps of "
        "mapt-events (history, backups) was kept"
    )
    assert engine.purged == []
    assert not engine.exists(events_stack_ref(REGION, backend))


def _ec2_event(detail_type: str, instance: str) -> dict[str, Any]:
    return {
        "Source": "aws.ec2",
        "DetailType": detail_type,
        "Detail": json.dumps({"instance-id": instance, "instance-action": "terminate"}),
    }


def test_made_on_the_endpoint_eventbridge_delivers_the_ec2_events_to_the_queue(
    aws: ApiCallLog,
) -> None:
    endpoint = Endpoint(REGION)
    mocks = ApplyingMocks(endpoint)
    run = run_program(
        event_intake_program(REGION),
        project="mapt-events",
        stack="events-eu-west-1-mapt-events",
        mocks=mocks,
        preview=False,
    )
    outputs: Mapping[str, Any] = run.plain_outputs()
    sqs, events = endpoint.client("sqs"), endpoint.client("events")
    attributes = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "20"
    dead_arn = sqs.get_queue_attributes(
        QueueUrl=outputs["dead_letter_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == dead_arn
    [statement] = json.loads(attributes["Policy"])["Statement"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == outputs["rule_arn"]
    assert sqs.list_queue_tags(QueueUrl=outputs["queue_url"])["Tags"]["mapt:project"] == (
        "mapt-events"
    )
    rule_name = outputs["rule_arn"].rsplit("/", 1)[-1]
    [target] = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    assert target["Arn"] == outputs["queue_arn"]

    entries = [_ec2_event(kind, f"i-0{n}") for n, kind in enumerate(DETAIL_TYPES)]
    entries.append({**_ec2_event(DETAIL_TYPES[0], "i-09"), "Source": "aws.autoscaling"})
    events.put_events(Entries=entries)
    bodies = []
    for _ in range(5):
        answer = sqs.receive_message(
            QueueUrl=outputs["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        bodies += [json.loads(message["Body"]) for message in answer.get("Messages", [])]
    assert sorted(body["detail"]["instance-id"] for body in bodies) == ["i-00", "i-01", "i-02"]
    assert {body["detail-type"] for body in bodies} == set(DETAIL_TYPES)

    mocks.delete_all()
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert events.list_rules()["Rules"] == []


def test_a_setup_or_teardown_waits_for_anothers_project_lock_and_gives_up_naming_it(
    tmp_path: Path,
) -> None:
    from mapt.core import StateLockedError
    from mapt.stacks import project_lock

    engine = CountingEngine()
    backend = f"file://{tmp_path / 'events'}"
    with project_lock(backend, "mapt-events", operation="event intake setup", timeout=1):
        for attempt in (
            lambda: ensure_event_intake(engine, [REGION], backend_url=backend, lock_timeout=0.2),
            lambda: remove_event_intake(engine, [REGION], backend_url=backend, lock_timeout=0.2),
        ):
            with pytest.raises(StateLockedError, match="event intake setup"):
                attempt()
    assert engine.ups == []  # nothing was written while another run held the lock
    ensure_event_intake(engine, [REGION], backend_url=backend, lock_timeout=0.2)
    assert engine.ups == ["events-eu-west-1-mapt-events"]
