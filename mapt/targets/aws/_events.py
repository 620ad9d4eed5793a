"""Event intake: where AWS's EC2 events about mapt's instances are delivered, per region.

One Pulumi stack per account and region (project ``mapt-events``, stack
``events-<region>-mapt-events``) holds:

- a dead-letter queue, where the service puts what it cannot use (with the reason);
- the intake queue, long-polled (20 s), redriving to the dead-letter queue after
  ``MAX_RECEIVES`` receives that were never deleted;
- an EventBridge rule on the default bus for the EC2 events mapt acts on
  (``DETAIL_TYPES``), and its target, the intake queue;
- the queue's policy: only EventBridge, and only for that rule (``aws:SourceArn``),
  may send to it.

EventBridge patterns cannot match an instance's tags (the events carry none), so the
rule takes every instance's events in the region; the service keeps those of
instances tagged ``mapt:project`` that it manages and dead-letters the rest.

``ensure_event_intake`` creates the stacks through an engine, or reuses one that
exists and records this program's ``INTAKE_REVISION`` (read, never updated: two
servers sharing a backend do not each run an ``up``), and says where each region's
queues are; ``remove_event_intake`` destroys them and ``event_intake_regions`` lists
the regions a backend holds one for. The program is ``event_intake_program``.
Importing this module loads no Pulumi.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mapt.core import (
    EVENTS_PROJECT,
    OperationError,
    PrerequisiteError,
    RunContext,
    StateLockedError,
    check_region_name,
    get_logger,
)

if TYPE_CHECKING:
    from mapt.stacks import Engine, Program, StackRef

log = get_logger(__name__)

# How long a setup or teardown waits for another one's ``mapt-events`` project lock
# (seconds): a region's ``up`` takes well under a minute; as ``mapt aws host``'s 5m.
INTAKE_LOCK_TIMEOUT = 300.0
EVENTS_STACK_PREFIX = "events"
EVENT_SOURCE = "aws.ec2"
INTERRUPTION_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE_RECOMMENDATION = "EC2 Instance Rebalance Recommendation"
STATE_CHANGE = "EC2 Instance State-change Notification"
DETAIL_TYPES = (INTERRUPTION_WARNING, REBALANCE_RECOMMENDATION, STATE_CHANGE)

# An interruption warning comes two minutes ahead: a message not handled within a day
# is of no use any more; the dead letters are kept for a person to read (14 days, the
# most SQS keeps).
QUEUE_RETENTION_SECONDS = 24 * 3600
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
# The longest long poll SQS allows: one request per 20 s per region when nothing comes.
RECEIVE_WAIT_SECONDS = 20
# A message received this often and never deleted (the service failed on it each
# time) goes to the dead-letter queue by itself.
MAX_RECEIVES = 5
# How long a received message stays hidden from the next receive.
VISIBILITY_TIMEOUT_SECONDS = 60

OUTPUT_QUEUE_URL = "queue_url"
OUTPUT_QUEUE_ARN = "queue_arn"
OUTPUT_DEAD_LETTER_URL = "dead_letter_url"
OUTPUT_RULE_ARN = "rule_arn"
OUTPUT_REVISION = "revision"
# What a stack records of the program that made it: raised whenever the program
# declares something new, so a stack made by an older mapt is updated once, and a
# stack of this revision is reused as it is (no ``up``, no lock, no new checkpoint).
INTAKE_REVISION = "1"


@dataclass(frozen=True)
class EventQueues:
    """Where one region's events arrive: the intake queue, its dead-letter queue, the rule."""

    region: str
    queue_url: str
    dead_letter_url: str
    rule_arn: str


def event_pattern() -> dict[str, Any]:
    """The EventBridge pattern of the rule: the three EC2 detail-types mapt acts on."""
    return {"source": [EVENT_SOURCE], "detail-type": list(DETAIL_TYPES)}


def events_stack_ref(region: str, backend_url: str | None = None) -> StackRef:
    """The event-intake stack of ``region`` (``events-<region>-mapt-events``)."""
    from mapt.stacks import StackRef

    return StackRef(
        project=EVENTS_PROJECT, name=f"{EVENTS_STACK_PREFIX}-{region}", backend_url=backend_url
    )


def queue_policy(queue_arn: str, rule_arn: str) -> str:
    """The intake queue's policy: EventBridge may send to it for ``rule_arn`` only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EventBridgeRuleOnly",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        },
        sort_keys=True,
    )


def event_intake_program(region: str, *, tags: dict[str, str] | None = None) -> Program:
    """The Pulumi program of ``region``'s event-intake stack (see the module docstring)."""

    def program() -> None:
        import pulumi
        import pulumi_aws as aws

        from mapt.targets.aws._base import new_deployment

        context = RunContext(EVENTS_PROJECT, region=region, tags=tags or {})
        ref = events_stack_ref(region)
        deployment = new_deployment(context, region=region, stack=ref.stack_name)
        dead_letters = aws.sqs.Queue(
            "dead-letters",
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=deployment.tags,
            opts=deployment.opts(),
        )
        queue = aws.sqs.Queue(
            "events",
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            receive_wait_time_seconds=RECEIVE_WAIT_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
            redrive_policy=dead_letters.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES}, sort_keys=True
                )
            ),
            sqs_managed_sse_enabled=True,
            tags=deployment.tags,
            opts=deployment.opts(),
        )
        rule = aws.cloudwatch.EventRule(
            "ec2-events",
            description="EC2 interruption warnings, rebalance recommendations and state "
            "changes, for the mapt service",
            event_pattern=json.dumps(event_pattern(), sort_keys=True),
            tags=deployment.tags,
            opts=deployment.opts(),
        )
        policy = aws.sqs.QueuePolicy(
            "events-from-rule",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, rule.arn).apply(
                lambda arns: queue_policy(arns[0], arns[1])
            ),
            opts=deployment.opts(),
        )
        aws.cloudwatch.EventTarget(
            "events-queue",
            rule=rule.name,
            arn=queue.arn,
            # The rule may deliver only once the queue admits it.
            opts=deployment.opts(depends_on=[policy]),
        )
        pulumi.export(OUTPUT_QUEUE_URL, queue.url)
        pulumi.export(OUTPUT_QUEUE_ARN, queue.arn)
        pulumi.export(OUTPUT_DEAD_LETTER_URL, dead_letters.url)
        pulumi.export(OUTPUT_RULE_ARN, rule.arn)
        pulumi.export(OUTPUT_REVISION, INTAKE_REVISION)

    return program


def ensure_event_intake(
    engine: Engine,
    regions: Iterable[str],
    *,
    backend_url: str | None = None,
    refresh: bool = False,
    lock_timeout: float = INTAKE_LOCK_TIMEOUT,
) -> dict[str, EventQueues]:
    """Create the event-intake stack of each region, or reuse it; where its queues are.

    Every region name is checked before any stack is touched (``InputError``, naming
    it). A stack that exists and records ``INTAKE_REVISION`` is reused from its
    outputs, as the allocation reuses a kept ``spotOption`` stack: nothing is written.
    Otherwise the stack's ``up`` creates it (or brings an older revision up to date).
    The whole of it holds the ``mapt-events`` project lock (waiting up to
    ``lock_timeout`` seconds, then ``StateLockedError``): setups from several servers
    and a teardown run one after another, so a later setup finds the first one's stack
    and reuses it, and a teardown never purges a stack a setup is writing. ``refresh``
    (a queue is gone from AWS) skips the reuse and refreshes before the ``up``, so what
    AWS no longer has is made again.
    A region whose ``up`` fails raises (``MaptError``); the regions before it stay set up.
    """
    from mapt.stacks import project_lock

    wanted = [check_region_name(region, "event region") for region in dict.fromkeys(regions)]
    found: dict[str, EventQueues] = {}
    with project_lock(
        backend_url, EVENTS_PROJECT, operation="event intake setup", timeout=lock_timeout
    ):
        for region in wanted:
            ref = events_stack_ref(region, backend_url)
            kept = engine.outputs(ref) if not refresh and engine.exists(ref) else {}
            if kept.get(OUTPUT_REVISION) == INTAKE_REVISION:
                found[region] = _queues_of(region, kept)
                log.info("event intake of %s: %s (reused)", region, found[region].queue_url)
            else:
                outputs = engine.up(ref, event_intake_program(region), refresh=refresh)
                found[region] = _queues_of(region, outputs)
                log.info("event intake of %s: %s", region, found[region].queue_url)
    return found


def _queues_of(region: str, outputs: dict[str, Any]) -> EventQueues:
    """The queues a stack's outputs name."""
    return EventQueues(
        region=region,
        queue_url=str(outputs[OUTPUT_QUEUE_URL]),
        dead_letter_url=str(outputs[OUTPUT_DEAD_LETTER_URL]),
        rule_arn=str(outputs[OUTPUT_RULE_ARN]),
    )


def event_intake_regions(engine: Engine, backend_url: str | None = None) -> list[str]:
    """The regions ``backend_url`` (None: the local default) holds an event-intake stack of.

    A backend that cannot be listed, or an entry of ``mapt-events`` that cannot be
    read, raises ``OperationError``: unknown state is never taken for no stack.
    """
    prefix, suffix = f"{EVENTS_STACK_PREFIX}-", f"-{EVENTS_PROJECT}"
    regions: list[str] = []
    for summary in engine.list_stacks(backend_url):
        if summary.project != EVENTS_PROJECT:
            continue
        if summary.unreadable is not None or not summary.stack_name:
            raise OperationError(
                f"cannot read the event-intake state at {summary.location or backend_url}: "
                f"{summary.unreadable}",
                hint="Repair or remove it; state that cannot be read is never taken as absent.",
            )
        name = summary.stack_name
        if name.startswith(prefix) and name.endswith(suffix):
            regions.append(name[len(prefix) : -len(suffix)])
    return sorted(regions)


def remove_event_intake(
    engine: Engine,
    regions: Iterable[str],
    *,
    backend_url: str | None = None,
    lock_timeout: float = INTAKE_LOCK_TIMEOUT,
) -> dict[str, bool]:
    """Destroy each region's event-intake stack (queues, rule, target, policy) and its
    state; by region, whether there was one. Once no region's stack is left in the
    backend, what Pulumi still keeps of ``mapt-events`` (history, backups) goes too.

    Region names are checked first (``InputError``); a failed destroy raises and keeps
    the state of what is left, so running it again finishes the job. It holds the
    ``mapt-events`` project lock as a setup does (``ensure_event_intake``).
    """
    from mapt.stacks import project_lock

    wanted = [check_region_name(region, "event region") for region in dict.fromkeys(regions)]
    removed: dict[str, bool] = {}
    with project_lock(
        backend_url, EVENTS_PROJECT, operation="event intake teardown", timeout=lock_timeout
    ):
        for region in wanted:
            removed[region] = engine.destroy(events_stack_ref(region, backend_url))
            if removed[region]:
                log.info("event intake of %s removed", region)
        if any(removed.values()) and not _regions_left(engine, backend_url, removed):
            engine.purge_project_state(backend_url, EVENTS_PROJECT)
    return removed


def _regions_left(engine: Engine, backend_url: str | None, removed: dict[str, bool]) -> list[str]:
    """The regions whose stacks are still in the backend after a teardown; when they
    cannot be listed (an unreadable entry, a lock, another passphrase) the teardown
    fails with that error's kind, its message naming what was already removed (that is
    done, and the project's history is kept)."""
    try:
        return event_intake_regions(engine, backend_url)
    except (OperationError, StateLockedError, PrerequisiteError) as error:  # kind kept
        gone = ", ".join(region for region, was in removed.items() if was)
        raise type(error)(
            f"removed the event intake of {gone}, then {error.message}; what Pulumi keeps "
            f"of {EVENTS_PROJECT} (history, backups) was kept",
            hint=error.hint,
        ) from error
