"""Interruptions: what the service does when AWS says it takes a spot host back.

The intake (``mapt.service._event_intake``) records each new event in ``host_events``
and, in the same transaction, calls ``on_host_event``:

- an interruption warning or a rebalance recommendation for a RUNNING host moves it
  RUNNING -> ERROR with the event as its reason, ends its cost interval
  (``interrupted``) and submits a ``hosts.replace`` execution, all in that transaction;
  for a host in any other state (being created, changed, replaced already, deleted),
  or about an instance a replacement was already submitted for (a rebalance
  recommendation, then the two-minute warning; or a late delivery: that machine is
  being, or was, replaced), the event is only recorded;
- a state-change notification is only recorded: an instance that stops or terminates
  is found by the reconciler's next pass (``mapt.service._reconciler``), which knows
  whether it is the host's current machine (a late notification about the instance
  a replacement already retired must not replace the new one).

``hosts.replace`` (``run_replace``, in a worker) asks the library: the circuit
breaker of the host's pool and region first (``mapt.hosts.open_breakers`` over the
recorded interruptions); when it is closed, the host's Auto Scaling group is given
``replacement_timeout`` to replace the instance in place
(``AwsHostTarget.replacement``); ``plan_replacement`` decides, and the create path
carries the plan out: in place (``AwsHostTarget.create``: refresh, launch, readiness,
setup), or moved off the kept offer (``AwsHostTarget.move``: the offer recorded failed
in ``spotOption-<project>``, the next candidate or on demand). The host ends
ERROR -> RUNNING with a new cost interval, or ERROR keeping both reasons, for the
reconciler's recovery attempts.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mapt.core import ExitCode, get_logger
from mapt.hosts import (
    SPOT_TUNING,
    BreakerPolicy,
    Interruption,
    OpenBreaker,
    ReplacementOutcome,
    open_breakers,
)
from mapt.service._costs import INTERRUPTED, host_placement, record_end
from mapt.service._database import Database
from mapt.service._executions import ExecutionError
from mapt.service._host_events import HostEvent, HostEventKind
from mapt.service._hosts import (
    HOST_WORKER_MODULES,
    REPLACE,
    Hosts,
    _field_name,
    _handed_back,
    _host,
    _hosts_of,
)
from mapt.service._schema import executions, host_events, hosts
from mapt.service._states import HostState, transition
from mapt.service._workers import ExecutionContext, Operation
from mapt.targets.aws import DEFAULT_REPLACEMENT_TIMEOUT

if TYPE_CHECKING:
    from mapt.hosts import Place

_log = get_logger(__name__)

# The events that take a host's spot instance away (or soon will).
INTERRUPTING = (HostEventKind.INTERRUPTION_WARNING, HostEventKind.REBALANCE_RECOMMENDATION)
# AWS's interruption warning comes this long before the instance-action.
WARNING_LEAD = timedelta(minutes=2)


@dataclass(frozen=True)
class InterruptionSettings:
    """The circuit breaker's policy, and how long a group is given to replace an
    interrupted instance in place (seconds) before the host moves."""

    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    replacement_timeout: float = DEFAULT_REPLACEMENT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.replacement_timeout > 0:
            raise ValueError(f"the replacement timeout {self.replacement_timeout} must be > 0")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def describe_event(event: HostEvent) -> str:
    """The host's error reason for an interrupting event, as a person reads it."""
    where = f"{event.instance_id} in {event.zone or event.region}"
    if event.kind is HostEventKind.INTERRUPTION_WARNING:
        action = event.action or "terminate"
        return (
            f"spot interruption warning for {where} ({action} at "
            f"{_iso(event.event_time + WARNING_LEAD)})"
        )
    return f"rebalance recommendation for {where} (at {_iso(event.event_time)})"


def on_host_event(store: Hosts, connection: sa.Connection, event: HostEvent) -> None:
    """Act on a newly recorded ``event``, in the intake's transaction (see the module doc).

    Called once per event: the intake records duplicates as nothing new and does not
    call this for them.
    """
    if event.kind not in INTERRUPTING:
        return
    query = sa.select(hosts).where(hosts.c.name == event.host)
    if not store.database.is_sqlite:
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None or row._mapping["state"] != HostState.RUNNING.value:
        state = "gone" if row is None else row._mapping["state"]
        _log.info("host %s is %s: %s only recorded", event.host, state, event.kind.value)
        return
    found = _host(row)
    if _replaced_before(connection, event):
        _log.info(
            "host %s: %s for %s, whose replacement was submitted already; only recorded",
            found.name,
            event.kind.value,
            event.instance_id,
        )
        return
    reason = describe_event(event)
    transition(found.name, found.state, HostState.ERROR)
    submitted = store.executions.submit_in(
        connection,
        REPLACE,
        found.name,
        {
            "fields": dict(found.fields),
            "reason": reason,
            "event": event.id,
            "instance": event.instance_id,
            "region": event.region,
            "pool": row._mapping["pool"],
            "since": _iso(event.event_time),
            # The reconciler's recovery attempts follow a failed replacement from here.
            "attempt": 0,
        },
    )
    now = _now()
    connection.execute(
        hosts.update()
        .where(hosts.c.name == found.name, hosts.c.state == HostState.RUNNING.value)
        .values(
            state=HostState.ERROR.value,
            execution_id=submitted,
            updated_at=now,
            error_type="SpotInterruption",
            error_message=reason,
            error_exit_code=int(ExitCode.FAILED),
        )
    )
    # What the interrupted machine cost ends with the event; the replacement opens the next.
    record_end(connection, found.name, at=min(event.event_time, now), reason=INTERRUPTED)
    _log.warning("host %s: %s; replacing it (%s)", found.name, reason, submitted)


def _replaced_before(connection: sa.Connection, event: HostEvent) -> bool:
    """Whether a ``hosts.replace`` of ``event``'s host was submitted for its instance."""
    submitted = connection.execute(
        sa.select(executions.c.arguments).where(
            executions.c.target == event.host, executions.c.name == REPLACE
        )
    ).scalars()
    return any((arguments or {}).get("instance") == event.instance_id for arguments in submitted)


# -- the circuit breaker, from the records ----------------------------------------------


def recorded_breakers(
    connection: sa.Connection, policy: BreakerPolicy, now: datetime
) -> Mapping[Place, OpenBreaker]:
    """The breakers open at ``now``, from the interruptions in ``host_events``."""
    horizon = now - policy.window - policy.cooldown
    rows = connection.execute(
        sa.select(
            host_events.c.pool,
            host_events.c.region,
            host_events.c.instance_id,
            host_events.c.event_time,
        ).where(
            host_events.c.kind.in_([kind.value for kind in INTERRUPTING]),
            host_events.c.event_time > horizon,
        )
    )
    return open_breakers(
        (Interruption(row.pool, row.region, row.instance_id, row.event_time) for row in rows),
        policy,
        now,
    )


def open_breakers_in(database: Database, policy: BreakerPolicy) -> Mapping[Place, OpenBreaker]:
    """``recorded_breakers`` now, in a transaction of its own."""
    with database.transaction() as connection:
        return recorded_breakers(connection, policy, _now())


def breaker_fields(
    fields: Mapping[str, Any],
    pool: str,
    breakers: Mapping[Place, OpenBreaker],
    *,
    fallback_on_demand: bool,
) -> dict[str, Any]:
    """A pool member's create ``fields`` with the pool's open breakers applied.

    A spot member avoids every region whose breaker is open for the pool: on demand
    when the pool's strategy falls back to it (in the open region, unless the
    template names one), else on spot with those regions excluded.
    """
    regions = sorted(region for (owner, region) in breakers if owner == pool)
    if not regions or not fields.get("spot"):
        return dict(fields)
    changed = dict(fields)
    if fallback_on_demand:
        changed["spot"] = False
        for tuning in SPOT_TUNING:  # refused on demand
            changed.pop(tuning, None)
        changed.setdefault("region", regions[0])
        return changed
    from mapt.hosts import spot_from_fields

    excluded = spot_from_fields(fields, name=_field_name).excluded_regions
    changed["spot_excluded_regions"] = sorted({*excluded, *regions})
    return changed


# -- the replacement (run in a worker process) -----------------------------------------


def run_replace(context: ExecutionContext, settings: InterruptionSettings) -> dict[str, Any]:
    """Replace an interrupted spot host: in place, elsewhere or on demand (module doc).

    ERROR -> RUNNING, or ERROR -> ERROR with the interruption and the failure; a host
    that moved on meanwhile (a delete asked while it was ERROR) is left alone.
    """
    from mapt.hosts import create_request, plan_replacement

    store, target = _hosts_of(context)
    host = store.get(context.target)
    arguments = context.arguments
    if host.state is not HostState.ERROR or host.execution_id != context.execution_id:
        return {"replaced": False, "why": f"the host is {host.state.value} now"}
    fields = dict(arguments["fields"])
    region, pool = str(arguments["region"]), arguments.get("pool")
    backend = fields.get("backed_url")
    try:
        request = create_request(fields, name=_field_name)

        def breaker_opened() -> bool:
            return (pool, region) in open_breakers_in(context.database, settings.breaker)

        # Open now, or while the group is waited for (another interruption of the place
        # came meanwhile): the host leaves the region.
        place_open = breaker_opened()
        group = None
        if not place_open:
            group = target.replacement(
                context.target,
                None if backend is None else str(backend),
                str(arguments["instance"]),
                since=datetime.fromisoformat(str(arguments["since"]).replace("Z", "+00:00")),
                timeout=settings.replacement_timeout,
                abandon=breaker_opened,
            )
            place_open = group is None
        if place_open:
            _log.warning(
                "the circuit breaker of %s in %s is open: spot leaves the region",
                f"pool {pool}" if pool else "hosts of no pool",
                region,
            )
        plan = plan_replacement(
            group,
            region=region,
            breaker_open=place_open,
            fallback_on_demand=request.fallback_on_demand,
        )
        record = target.create(request) if plan.in_place else target.move(request, plan)
    except Exception as failure:
        if _handed_back(context, failure):
            raise  # a stopped server: the worker releases the execution to run again
        # Whatever went wrong, a domain error or not, the host says the replacement
        # failed and why; the execution fails with the same error (the worker's).
        error = ExecutionError.of_any(failure)
        message = f"{arguments['reason']}; the replacement failed: {error.message}"
        store.settle(
            context.target,
            HostState.ERROR,
            execution_id=context.execution_id,
            error=dataclasses.replace(error, message=message),
        )
        raise
    if plan.in_place:
        outcome = ReplacementOutcome.IN_PLACE
    elif record.allocation.is_spot:
        outcome = ReplacementOutcome.MOVED
    else:
        outcome = ReplacementOutcome.ON_DEMAND
    document = record.to_dict()
    store.settle(
        context.target,
        HostState.RUNNING,
        execution_id=context.execution_id,
        record=document,
        expires_at=record.expires_at,
        placement=host_placement(fields, document),
    )
    _log.warning("host %s replaced (%s)", context.target, outcome.value)
    return {"replaced": True, "outcome": outcome.value, **document}


def interruption_operations(settings: InterruptionSettings) -> dict[str, Operation]:
    """``hosts.replace`` with ``settings`` (a Pulumi ``up`` resumes safely)."""
    replace = functools.partial(run_replace, settings=settings)
    return {REPLACE: Operation(REPLACE, replace, preload=HOST_WORKER_MODULES)}


# -- metrics -----------------------------------------------------------------------------


class InterruptionCollector(Collector):
    """Interruptions by region and pool, replacements by outcome, open breakers."""

    def __init__(self, database: Database, policy: BreakerPolicy) -> None:
        self.database = database
        self.policy = policy

    def collect(self) -> Iterator[Metric]:
        interruptions = CounterMetricFamily(
            "mapt_interruptions",
            "Interruption warnings and rebalance recommendations heard, by region and pool.",
            labels=["kind", "region", "pool"],
        )
        replacements = CounterMetricFamily(
            "mapt_replacements",
            "Replacements of interrupted hosts that ended, by outcome.",
            labels=["outcome"],
        )
        breakers = GaugeMetricFamily(
            "mapt_breaker_open",
            "1 for each pool and region whose spot launches the circuit breaker stops.",
            labels=["region", "pool"],
        )
        counted = sa.select(
            host_events.c.kind, host_events.c.region, host_events.c.pool, sa.func.count()
        )
        ended = sa.select(executions.c.status, executions.c.result).where(
            executions.c.name == REPLACE,
            executions.c.status.in_(["succeeded", "failed", "cancelled"]),
        )
        outcomes = {outcome.value: 0 for outcome in ReplacementOutcome}
        with self.database.transaction() as connection:
            for kind, region, pool, count in connection.execute(
                counted.where(host_events.c.kind.in_([k.value for k in INTERRUPTING])).group_by(
                    host_events.c.kind, host_events.c.region, host_events.c.pool
                )
            ):
                interruptions.add_metric([kind, region, pool or ""], count)
            for status, result in connection.execute(ended):
                outcome = (result or {}).get("outcome") if status == "succeeded" else None
                if status == "succeeded" and outcome is None:
                    continue  # the host had moved on: nothing was replaced
                outcomes[outcome or ReplacementOutcome.FAILED.value] += 1
            opened = recorded_breakers(connection, self.policy, _now())
        for outcome, count in outcomes.items():
            replacements.add_metric([outcome], count)
        for (pool, region), _breaker in sorted(opened.items(), key=lambda item: str(item[0])):
            breakers.add_metric([region, pool or ""], 1)
        yield interruptions
        yield replacements
        yield breakers
