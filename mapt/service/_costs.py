"""Host history and what it cost: the intervals each host ran, priced on request.

``record_placement`` and ``record_end`` keep ``host_intervals``: a host that starts
running in a place opens an interval, a replacement (resize, recovery, interruption)
ends the open one and opens the next, a delete ends it. ``Hosts.settle`` records them
in the transaction that moves the host, so history and state never disagree; the
reconciler calls the same two functions for what it finds (an interruption).

``CostBook`` prices the intervals within a window (``mapt.costs``): a host's, a pool's,
or every host's by pool and in total. Closed intervals cost what they cost forever:
their prices are kept in memory, so only open intervals ask AWS again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from mapt.costs import (
    Cost,
    CostReport,
    Interval,
    Placement,
    PriceSource,
    cost_report,
    list_priced,
    microseconds,
    price_interval,
    window,
)
from mapt.service._database import Database
from mapt.service._errors import NotFoundError
from mapt.service._schema import host_intervals, hosts

# Why an interval starts (after the first, "created") or ends.
CREATED = "created"
RESIZED = "resized"
RECOVERED = "recovered"
INTERRUPTED = "interrupted"
FAILED = "failed"  # the reconciler found its machine gone; a recovery starts the next
DELETED = "deleted"


@dataclass(frozen=True)
class HostPlacement:
    """Where a host runs now (``Placement``), whether it is air-gapped, whether a spot host
    sits behind its load balancer (one with a name of its own has none), and its pool."""

    placement: Placement
    airgap: bool = False
    load_balancer: bool = True
    pool: str | None = None


def host_placement(
    fields: Mapping[str, Any], record: Mapping[str, Any], *, pool: str | None = None
) -> HostPlacement:
    """The placement of a host from its create ``fields`` and its record (``HostRecord``'s
    document): the allocation chosen, the OS's spot product, the air gap; ``pool``: the
    pool it serves."""
    from mapt.allocation import AllocationResult
    from mapt.hosts import PRODUCT_DESCRIPTIONS, create_request

    request = create_request(dict(fields), name=str)
    chosen = AllocationResult.from_dict(record["allocation"])
    return HostPlacement(
        Placement(
            region=chosen.region,
            availability_zone=chosen.availability_zone,
            instance_types=chosen.instance_types,
            spot=chosen.is_spot,
            product=PRODUCT_DESCRIPTIONS[request.host.os],
        ),
        airgap=request.host.airgap,
        load_balancer=request.host.load_balanced(chosen.is_spot),
        pool=pool,
    )


def _open_interval(connection: sa.Connection, host: str) -> Interval | None:
    row = connection.execute(
        sa.select(host_intervals).where(
            host_intervals.c.host == host, host_intervals.c.ended_at.is_(None)
        )
    ).first()
    return None if row is None else _interval(row)


def _last_end_reason(connection: sa.Connection, host: str) -> str | None:
    """Why the host's latest closed interval ended (None: it has none)."""
    return connection.execute(
        sa.select(host_intervals.c.end_reason)
        .where(host_intervals.c.host == host, host_intervals.c.ended_at.is_not(None))
        .order_by(host_intervals.c.ended_at.desc())
        .limit(1)
    ).scalar()


def record_placement(
    connection: sa.Connection, host: str, where: HostPlacement, *, at: datetime, reason: str
) -> bool:
    """``host`` runs at ``where`` from ``at``: the open interval ends (``reason``) and a new
    one starts, unless it is already there. Whether a new interval was opened.

    The first interval of a host, or the first after it was deleted, starts as
    ``created`` whatever ``reason`` says; after a failure or an interruption it starts
    with ``reason``.
    """
    current = _open_interval(connection, host)
    continues = current is not None or _last_end_reason(connection, host) in (FAILED, INTERRUPTED)
    if current is not None:
        if (current.placement, current.airgap, current.load_balancer, current.pool) == (
            where.placement,
            where.airgap,
            where.load_balancer and where.placement.spot,
            where.pool,
        ):
            return False
        _close(connection, current, at=at, reason=reason)
    placement = where.placement
    connection.execute(
        host_intervals.insert().values(
            host=host,
            pool=where.pool,
            region=placement.region,
            availability_zone=placement.availability_zone,
            instance_types=list(placement.instance_types),
            spot=placement.spot,
            product=placement.product,
            airgap=where.airgap,
            load_balancer=where.load_balancer and placement.spot,
            started_at=at,
            start_reason=reason if continues else CREATED,
        )
    )
    return True


def record_end(connection: sa.Connection, host: str, *, at: datetime, reason: str) -> bool:
    """``host`` stopped running at ``at`` (``reason``); whether an interval was open."""
    current = _open_interval(connection, host)
    if current is None:
        return False
    _close(connection, current, at=at, reason=reason)
    return True


def _close(connection: sa.Connection, interval: Interval, *, at: datetime, reason: str) -> None:
    connection.execute(
        host_intervals.update()
        .where(host_intervals.c.id == interval.id)
        .values(ended_at=at, end_reason=reason)
    )


def _interval(row: sa.Row[Any]) -> Interval:
    m = row._mapping
    return Interval(
        id=m["id"],
        host=m["host"],
        pool=m["pool"],
        placement=Placement(
            region=m["region"],
            availability_zone=m["availability_zone"],
            instance_types=tuple(m["instance_types"]),
            spot=m["spot"],
            product=m["product"],
        ),
        airgap=m["airgap"],
        # Recorded since revision 0007; before it, every spot host had its balancer.
        load_balancer=m["spot"] if m["load_balancer"] is None else m["load_balancer"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        start_reason=m["start_reason"],
        end_reason=m["end_reason"],
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CostBook:
    """Prices ``host_intervals`` with ``prices`` (AWS in the server)."""

    def __init__(
        self,
        database: Database,
        prices: PriceSource,
        *,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.database = database
        self.prices = prices
        self.now = now
        # (interval id, start, end) -> its cost: a closed stretch's prices never change.
        self._known: dict[tuple[int | None, datetime, datetime], Cost] = {}
        self._lock = threading.Lock()

    def intervals(
        self, *, host: str | None = None, pool: str | None = None, since: datetime | None = None
    ) -> list[Interval]:
        query = sa.select(host_intervals).order_by(host_intervals.c.started_at, host_intervals.c.id)
        if host is not None:
            query = query.where(host_intervals.c.host == host)
        if pool is not None:
            query = query.where(host_intervals.c.pool == pool)
        if since is not None:
            query = query.where(
                sa.or_(host_intervals.c.ended_at.is_(None), host_intervals.c.ended_at > since)
            )
        with self.database.transaction() as connection:
            return [_interval(row) for row in connection.execute(query)]

    def report(
        self, intervals: Iterable[Interval], start: datetime | None, end: datetime
    ) -> CostReport:
        """What ``intervals`` cost within [start, end)."""
        return cost_report(intervals, start, end, self._price)

    def _price(self, interval: Interval, start: datetime, end: datetime) -> Cost:
        key = (interval.id, start, end)
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        cost = price_interval(self.prices, interval.placement, start, end)
        if interval.ended_at is not None and interval.ended_at <= end:
            with self._lock:
                self._known[key] = cost
        return cost

    # -- the questions the API asks ------------------------------------------------
    def host(self, name: str, start: date | None = None, end: date | None = None) -> CostReport:
        """Host ``name``'s costs over the days [start, end] (``NotFoundError``: no such host)."""
        with self.database.transaction() as connection:
            known = connection.execute(sa.select(hosts.c.name).where(hosts.c.name == name)).first()
        if known is None:
            raise NotFoundError(f"no host is named {name!r}")
        low, high = window(start, end, self.now())
        return self.report(self.intervals(host=name, since=low), low, high)

    def pool(self, name: str, start: date | None = None, end: date | None = None) -> CostReport:
        """The costs of pool ``name``'s members while they served it (the pools' route)."""
        low, high = window(start, end, self.now())
        return self.report(self.intervals(pool=name, since=low), low, high)

    def by_pool(
        self, start: date | None = None, end: date | None = None
    ) -> tuple[CostReport, dict[str | None, CostReport]]:
        """Every host's costs in total, and by pool (None: hosts of no pool)."""
        low, high = window(start, end, self.now())
        everything = self.intervals(since=low)
        groups: dict[str | None, list[Interval]] = {}
        for interval in everything:
            groups.setdefault(interval.pool, []).append(interval)
        return self.report(everything, low, high), {
            pool: self.report(members, low, high) for pool, members in groups.items()
        }


def costs_document(total: CostReport, pools: Mapping[str | None, CostReport]) -> dict[str, Any]:
    """``GET /v1/costs``: the total and each pool in the spot-api's shape (hosts of no pool
    under ``hosts``), and the list-priced resources of all."""
    named = sorted((name, report) for name, report in pools.items() if name is not None)
    return {
        "total": total.as_spot_api(),
        "pools": {name: report.as_spot_api() for name, report in named},
        "hosts": pools[None].as_spot_api() if None in pools else Cost().as_spot_api(),
        "list_priced": list_priced(dict(total.hours_by_shape)),
    }


def running_hours(intervals: Sequence[Interval], now: datetime) -> dict[str, Decimal]:
    """Hours run on ``spot`` and ``on-demand`` capacity, every interval until ``now``."""
    hours = {"spot": Decimal(0), "on-demand": Decimal(0)}
    for interval in intervals:
        span = microseconds((interval.ended_at or now) - interval.started_at)
        hours["spot" if interval.placement.spot else "on-demand"] += Decimal(max(span, 0))
    return {kind: value / Decimal(3_600_000_000) for kind, value in hours.items()}
