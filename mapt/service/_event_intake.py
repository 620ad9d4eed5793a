"""Event intake: the leader long-polls each region's queue of EC2 events about its hosts.

AWS tells, through EventBridge, of a spot instance's interruption two minutes ahead,
of a rebalance recommendation earlier, and of every state change; the rule of each
region's event-intake stack (``mapt.targets.aws.ensure_event_intake``) puts them on an
SQS queue. The leader (``event_intake_task``, a ``LeaderTask``):

1. sets up the stacks of the regions it watches (``EventIntakeSettings``), once per
   region and server term; a region whose setup fails is tried again next pass, and
   one whose queue is gone from AWS (``mapt serve teardown``, or deleted by hand) is
   set up again, with a refresh, while it is still watched;
2. long-polls every region's queue at once (one thread per region);
3. for each message: parses the EventBridge envelope (``parse_envelope``), maps the
   instance to a host (its ``mapt:project`` tag, asked of EC2, then the hosts table),
   records the event (``host_events``) and hands it to
   ``mapt.service._interruptions.on_host_event`` in the same transaction, and deletes
   the message only once that transaction is committed.

EventBridge delivers at least once: an event id already recorded is a duplicate,
deleted without acting again. A message that is not an event (unparseable), not one
of the three EC2 detail-types, or about an instance that is no host of this service,
is sent to the region's dead-letter queue with its reason (message attribute
``reason``), logged in one line, and deleted from the intake queue; nothing else
changes. When EC2 cannot be asked (or does not know the instance yet) the message is
left for the next poll: unknown is never taken for foreign. A message left this way
``MAX_RECEIVES`` times goes to the dead-letter queue by the queue's own redrive policy.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mapt.core import check_region_name, get_logger, known_regions
from mapt.service._executions import Executions
from mapt.service._host_events import HostEvent, HostEventKind, record_host_event
from mapt.service._hosts import Hosts
from mapt.service._leader import LeaderContext, LeaderTask
from mapt.service._schema import host_events, host_intervals, hosts

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from mapt.targets.aws import EventQueues

_log = get_logger(__name__)

# EventBridge's detail-types, and what each one is as a host event.
DETAIL_TYPE_KINDS: Mapping[str, HostEventKind] = {
    "EC2 Spot Instance Interruption Warning": HostEventKind.INTERRUPTION_WARNING,
    "EC2 Instance Rebalance Recommendation": HostEventKind.REBALANCE_RECOMMENDATION,
    "EC2 Instance State-change Notification": HostEventKind.STATE_CHANGE,
}
EVENT_SOURCE = "aws.ec2"
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
# The tag every resource mapt makes carries (``mapt.targets.aws._tags``).
PROJECT_TAG = "mapt:project"
# The message attribute a dead letter's reason is in.
REASON_ATTRIBUTE = "reason"
# What one receive asks for at most (SQS's limit).
_BATCH = 10
# How often the regions hosts run in are asked of the database (seconds).
_HOSTS_EVERY = 10.0

# Outcomes counted by /metrics; an unparseable message counts under kind "unknown".
RECORDED = "recorded"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"
UNKNOWN_KIND = "unknown"

OnHostEvent = Callable[[Hosts, sa.Connection, HostEvent], None]


@dataclass(frozen=True)
class EventIntakeSettings:
    """Which regions' events the leader takes in, and how it polls.

    ``regions``: always watched (their stacks set up when the leader starts);
    ``follow_hosts``: also every region a managed host runs in, set up when a host
    first runs there; ``wait_seconds``: the long poll's wait (1..20, SQS's range);
    ``backend_url``: the Pulumi state backend of the stacks (None: the local default);
    ``secrets_provider``: their secrets provider (None: the passphrase, as for hosts);
    ``setup_retry``: the wait before a region whose setup failed is tried again.
    Nothing to watch (the default): no intake task runs.
    """

    regions: tuple[str, ...] = ()
    follow_hosts: bool = False
    wait_seconds: int = 20
    backend_url: str | None = None
    secrets_provider: str | None = None
    setup_retry: float = 60.0

    def __post_init__(self) -> None:
        for region in self.regions:
            check_region_name(region, "event region")
        if not 1 <= self.wait_seconds <= 20:
            raise ValueError(f"the event poll wait {self.wait_seconds} s must be 1..20")

    @property
    def enabled(self) -> bool:
        return bool(self.regions) or self.follow_hosts

    def check_secrets(self) -> None:
        """Refuse a shared (s3://) backend whose stacks could not be encrypted (no
        passphrase in the environment, no KMS key): ``PrerequisiteError``, as a host's
        command is refused, when the server starts, not when the leader first sets a
        region up. A file backend gets its passphrase file at the first setup, as a
        host's does, so nothing is written here."""
        if not self.enabled or self.backend_url is None:
            return
        from mapt.stacks import parse_backend_url, secrets_setup

        backend = parse_backend_url(self.backend_url)
        if backend.kind != "file":
            secrets_setup(backend, self.secrets_provider, provider_flag="--events-secrets-provider")


class UnusableMessage(Exception):
    """A message the intake cannot use; its text is the reason the dead letter carries."""


@dataclass(frozen=True)
class Envelope:
    """What the intake reads of one EventBridge event (``parse_envelope``)."""

    id: str
    kind: HostEventKind
    region: str
    time: datetime
    instance_id: str
    action: str | None = None
    state: str | None = None


def parse_envelope(body: str) -> Envelope:
    """The EventBridge event in an SQS message's body, as AWS sends it.

    Raises ``UnusableMessage`` naming what is wrong: not JSON, not an object, not from
    ``aws.ec2``, another detail-type, a field missing or of the wrong form (``id``,
    ``region``, ``time`` in RFC 3339, ``detail.instance-id``; ``detail.instance-action``
    of an interruption warning, ``detail.state`` of a state change).
    """
    try:
        event = json.loads(body)
    except ValueError as error:
        raise UnusableMessage(f"not JSON: {error}") from None
    if not isinstance(event, dict):
        raise UnusableMessage(f"not an EventBridge event: a JSON {type(event).__name__}")
    source = event.get("source")
    if source != EVENT_SOURCE:
        raise UnusableMessage(f"source {source!r} is not {EVENT_SOURCE!r}")
    detail_type = event.get("detail-type")
    kind = DETAIL_TYPE_KINDS.get(detail_type) if isinstance(detail_type, str) else None
    if kind is None:
        raise UnusableMessage(f"detail-type {detail_type!r} is not one mapt acts on")
    event_id = _text(event, "id")
    region = _text(event, "region")
    if region not in known_regions():
        raise UnusableMessage(f"region {region!r} is not an AWS region")
    moment = _time(_text(event, "time"))
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise UnusableMessage("detail is missing or not an object")
    instance_id = _text(detail, "instance-id", "detail.")
    if not _INSTANCE_ID.fullmatch(instance_id):
        raise UnusableMessage(f"detail.instance-id {instance_id!r} is not an instance id")
    action = _optional_text(detail, "instance-action")
    state = _optional_text(detail, "state")
    if kind is HostEventKind.INTERRUPTION_WARNING and action is None:
        raise UnusableMessage("an interruption warning without detail.instance-action")
    if kind is HostEventKind.STATE_CHANGE and state is None:
        raise UnusableMessage("a state-change notification without detail.state")
    return Envelope(event_id, kind, region, moment, instance_id, action, state)


def _text(values: Mapping[str, Any], key: str, prefix: str = "") -> str:
    value = values.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UnusableMessage(f"{prefix}{key} is missing or not a string")
    return value


def _optional_text(values: Mapping[str, Any], key: str) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise UnusableMessage(f"detail.{key} {value!r} is not a string")
    return value


def _time(text: str) -> datetime:
    from mapt.targets.aws._tags import parse_timestamp

    moment = parse_timestamp(text)
    if moment is None:
        raise UnusableMessage(f"time {text!r} is not an RFC 3339 time with a zone")
    return moment


# -- what /metrics counts ----------------------------------------------------------------------
class EventCounts:
    """Messages this server's intake handled, by kind and outcome (since it started)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, kind: str, outcome: str) -> None:
        with self._lock:
            self._counts[(kind, outcome)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def collect(self) -> Iterator[Metric]:
        """``mapt_host_events_received_total{kind, outcome}`` (a ``prometheus_client``
        collector's ``collect``)."""
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "mapt_host_events_received",
            "EC2 events the intake took off its queues, by kind and outcome.",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), count in sorted(self.snapshot().items()):
            family.add_metric([kind, outcome], count)
        yield family


# The intake runs in the leader's thread of the process that serves /metrics.
EVENT_COUNTS = EventCounts()


# -- the loop ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Owner:
    """The instance's ``mapt:project`` tag (None: untagged) and its zone."""

    project: str | None
    zone: str | None


class _NotYetKnown(Exception):
    """EC2 could not say whose the instance is now: the message waits for the next poll."""


@dataclass
class EventIntake:
    """The intake's state across passes: the queues set up so far (per region)."""

    settings: EventIntakeSettings
    on_event: OnHostEvent
    counts: EventCounts = EVENT_COUNTS
    queues: dict[str, EventQueues] = field(default_factory=dict)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    # When each region whose setup failed may be tried again (time.monotonic()).
    _retry_at: dict[str, float] = field(default_factory=dict)
    # The regions hosts run in, asked of the database at most every _HOSTS_EVERY s.
    _host_regions: tuple[str, ...] = ()
    _hosts_asked_at: float | None = None
    # Regions whose queue AWS no longer has: set up again with a refresh.
    _vanished: set[str] = field(default_factory=set)

    def run(self, context: LeaderContext) -> None:
        """One pass: set up new regions' stacks, then poll every region's queue once."""
        self._set_up(context, self._wanted_regions(context))
        if not context.leading():
            return
        pollers = [
            threading.Thread(
                target=self._poll_logged,
                args=(context, queues),
                name=f"mapt-events-{queues.region}",
                daemon=True,
            )
            for queues in self.queues.values()
        ]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()

    def _wanted_regions(self, context: LeaderContext) -> list[str]:
        """The regions to watch that are not set up yet (nor waiting to be tried again)."""
        now = time.monotonic()
        if self.settings.follow_hosts and (
            self._hosts_asked_at is None or now - self._hosts_asked_at >= _HOSTS_EVERY
        ):
            with context.database.transaction() as connection:
                self._host_regions = tuple(hosts_by_region(connection))
            self._hosts_asked_at = now
        wanted = dict.fromkeys((*self.settings.regions, *self._host_regions))
        return [
            region
            for region in wanted
            if region not in self.queues and self._retry_at.get(region, 0.0) <= now
        ]

    def _set_up(self, context: LeaderContext, regions: list[str]) -> None:
        if not regions:
            return
        from mapt.core import redact
        from mapt.targets.aws import ensure_event_intake

        services = context.services
        for region in regions:
            if not context.leading():
                return
            try:
                services.check_engine()
                engine = services.engine(self.settings.secrets_provider, False)
                self.queues.update(
                    ensure_event_intake(
                        engine,
                        [region],
                        backend_url=self.settings.backend_url,
                        refresh=region in self._vanished,
                    )
                )
                self._vanished.discard(region)
            except Exception as error:  # an engine's failure is not always a MaptError
                self._retry_at[region] = time.monotonic() + self.settings.setup_retry
                _log.error(
                    "event intake of %s not set up (tried again in %g s): %s",
                    region,
                    self.settings.setup_retry,
                    redact(str(error)),
                )

    def _poll_logged(self, context: LeaderContext, queues: EventQueues) -> None:
        from mapt.core import redact

        try:
            self.poll(context, queues)
        except Exception as error:  # one region's failure must not stop the others
            if _queue_gone(error):
                # Set up again next pass if the region is still watched (a host runs there).
                self.queues.pop(queues.region, None)
                self._vanished.add(queues.region)
                _log.warning(
                    "the event queue of %s is gone (%s): set up again while watched",
                    queues.region,
                    queues.queue_url,
                )
                return
            _log.error("polling the events of %s failed: %s", queues.region, redact(str(error)))

    def _client(self, service: str, region: str) -> Any:
        """A client of ``region`` (made once; clients are thread-safe): botocore's
        standard retries, and a read timeout longer than the long poll's wait."""
        key = (service, region)
        if key not in self._clients:
            from botocore.config import Config

            from mapt.core import aws_session

            session: Any = aws_session()
            config = Config(
                retries={"mode": "standard"}, read_timeout=self.settings.wait_seconds + 20
            )
            self._clients[key] = session.client(service, region_name=region, config=config)
        return self._clients[key]

    def poll(self, context: LeaderContext, queues: EventQueues) -> None:
        """One long poll of ``queues``' intake queue, and every message it brought."""
        sqs = self._client("sqs", queues.region)
        answer = sqs.receive_message(
            QueueUrl=queues.queue_url,
            MaxNumberOfMessages=_BATCH,
            WaitTimeSeconds=self.settings.wait_seconds,
        )
        from mapt.core import redact

        for message in answer.get("Messages", []):
            if not context.leading():
                return  # what is left reappears for the next leader
            try:
                self.handle(context, queues, message)
            except Exception as error:  # the record rolled back: the message comes back
                _log.exception(
                    "event message %s of %s left for the next poll: %s",
                    message.get("MessageId", "?"),
                    queues.region,
                    redact(str(error)),
                )

    def handle(
        self, context: LeaderContext, queues: EventQueues, message: Mapping[str, Any]
    ) -> None:
        """Record, skip or dead-letter one message (see the module docstring)."""
        body = str(message.get("Body", ""))
        try:
            envelope = parse_envelope(body)
        except UnusableMessage as error:
            self._dead_letter(queues, message, UNKNOWN_KIND, str(error))
            return
        kind = envelope.kind.value
        if envelope.region != queues.region:
            reason = f"an event of {envelope.region} on the queue of {queues.region}"
            self._dead_letter(queues, message, kind, reason)
            return
        if self._recorded(context, envelope.id):
            self._delete(queues, message)
            self.counts.add(kind, DUPLICATE)
            return
        try:
            owner = self._owner(queues.region, envelope.instance_id)
        except _NotYetKnown as error:
            _log.warning("event %s left for the next poll: %s", envelope.id, error)
            return
        if owner.project is None:
            reason = f"instance {envelope.instance_id} has no {PROJECT_TAG} tag: not mapt's"
            self._dead_letter(queues, message, kind, reason)
            return
        new, reason, event = False, "", None
        with context.database.transaction() as connection:
            host = connection.execute(
                sa.select(hosts.c.name, hosts.c.pool).where(hosts.c.name == owner.project)
            ).first()
            if host is None:
                reason = (
                    f"instance {envelope.instance_id} is of project {owner.project!r}, "
                    "which is no host of this service"
                )
            else:
                event = HostEvent(
                    id=envelope.id,
                    kind=envelope.kind,
                    host=host.name,
                    pool=host.pool,
                    region=envelope.region,
                    zone=owner.zone,
                    instance_id=envelope.instance_id,
                    action=envelope.action,
                    instance_state=envelope.state,
                    event_time=envelope.time,
                    received_at=datetime.now(timezone.utc),
                )
                new = record_host_event(connection, event)
                if new:
                    store = Hosts(context.database, Executions(context.database))
                    self.on_event(store, connection, event)
        if event is None:
            self._dead_letter(queues, message, kind, reason)
            return
        # Committed: the record (and what it set off) survives whatever happens next.
        self._delete(queues, message)
        self.counts.add(kind, RECORDED if new else DUPLICATE)
        if new:
            _log.warning(
                "host %s: %s for %s in %s",
                event.host,
                kind,
                event.instance_id,
                event.zone or event.region,
                extra={"host_event": event.id, "host": event.host, "event_kind": kind},
            )
            context.submitted()

    @staticmethod
    def _recorded(context: LeaderContext, event_id: str) -> bool:
        query = sa.select(host_events.c.id).where(host_events.c.id == event_id)
        with context.database.transaction() as connection:
            return connection.execute(query).first() is not None

    def _owner(self, region: str, instance_id: str) -> _Owner:
        """Whose instance it is, from EC2; ``_NotYetKnown`` when EC2 cannot say now."""
        from botocore.exceptions import BotoCoreError, ClientError

        from mapt.core import redact

        try:
            reservations = self._client("ec2", region).describe_instances(
                InstanceIds=[instance_id]
            )["Reservations"]
        except ClientError as error:
            # Not found: EC2 may not show a just-launched instance yet; the queue's
            # redrive moves a message that stays unknown to the dead letters.
            raise _NotYetKnown(f"EC2 cannot describe {instance_id}: {error}") from None
        except BotoCoreError as error:
            raise _NotYetKnown(f"EC2 cannot be asked: {redact(str(error))}") from None
        instances = [i for reservation in reservations for i in reservation["Instances"]]
        if not instances:
            raise _NotYetKnown(f"EC2 does not show {instance_id} yet")
        tags = {tag["Key"]: tag["Value"] for tag in instances[0].get("Tags", [])}
        zone = instances[0].get("Placement", {}).get("AvailabilityZone")
        return _Owner(project=tags.get(PROJECT_TAG), zone=zone)

    def _delete(self, queues: EventQueues, message: Mapping[str, Any]) -> None:
        self._client("sqs", queues.region).delete_message(
            QueueUrl=queues.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )

    def _dead_letter(
        self, queues: EventQueues, message: Mapping[str, Any], kind: str, reason: str
    ) -> None:
        """Send the message to the dead-letter queue with its reason, then delete it."""
        self._client("sqs", queues.region).send_message(
            QueueUrl=queues.dead_letter_url,
            MessageBody=str(message.get("Body", "")) or "(empty)",
            MessageAttributes={REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason}},
        )
        self._delete(queues, message)
        self.counts.add(kind, DEAD_LETTERED)
        _log.warning(
            "event message %s of %s dead-lettered: %s",
            message.get("MessageId", "?"),
            queues.region,
            reason,
            extra={"dead_letter_reason": reason, "event_region": queues.region},
        )


def hosts_by_region(connection: sa.Connection) -> dict[str, tuple[str, ...]]:
    """The managed hosts running in each region (their open cost interval), by region."""
    query = (
        sa.select(host_intervals.c.region, host_intervals.c.host)
        .where(host_intervals.c.ended_at.is_(None))
        .order_by(host_intervals.c.region, host_intervals.c.host)
    )
    found: dict[str, list[str]] = {}
    for region, host in connection.execute(query):
        found.setdefault(region, []).append(host)
    return {region: tuple(names) for region, names in found.items()}


def _queue_gone(error: Exception) -> bool:
    """Whether SQS answered that the queue does not exist (under either protocol's code)."""
    from botocore.exceptions import ClientError

    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in (
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    )


def event_intake_task(settings: EventIntakeSettings, on_event: OnHostEvent) -> LeaderTask:
    """The intake as a leader-only task: passes back to back (each one long-polls).

    The task keeps its queues for the server's life; a new term sets nothing up again
    that is set up already (the stacks are unchanged), and a region new since is.
    """
    intake = EventIntake(settings, on_event)
    # A short pause between passes: each pass waits up to wait_seconds on the queues.
    return LeaderTask("event-intake", 1.0, intake.run)
