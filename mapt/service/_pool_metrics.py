"""The leases' metrics: served (at once, after waiting, by a cold start), waiting now,
active, and expired leases reclaimed, per pool (registered on ``Service.metrics``).

Served, active and expired come from the leases table at scrape time, like the rest
of ``/metrics``; waiting now is the lease requests this server is polling for a member
(they live in its process only: each server reports its own).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mapt.service._database import Database
from mapt.service._schema import leases, pools

SERVED = ("at_once", "after_wait", "cold_start")


class LeaseWaits:
    """The lease requests waiting for an idle member now, per pool (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: Counter[str] = Counter()

    @contextmanager
    def waiting(self, pool: str) -> Iterator[None]:
        with self._lock:
            self._waiting[pool] += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting[pool] -= 1

    def now(self) -> dict[str, int]:
        with self._lock:
            return {pool: count for pool, count in self._waiting.items() if count}


class LeaseCollector(Collector):
    """``mapt_leases_served_total{pool, served}``, ``mapt_leases_expired_total{pool}``,
    ``mapt_leases_active{pool}`` and ``mapt_leases_waiting{pool}`` (0 for every pool
    nobody waits on)."""

    def __init__(self, database: Database, waits: LeaseWaits) -> None:
        self.database = database
        self.waits = waits

    def collect(self) -> Iterator[Metric]:
        served = CounterMetricFamily(
            "mapt_leases_served",
            "Leases handed out, by how: at once, after waiting, by a cold start.",
            labels=["pool", "served"],
        )
        expired = CounterMetricFamily(
            "mapt_leases_expired", "Leases reclaimed past their ttl.", labels=["pool"]
        )
        active = GaugeMetricFamily("mapt_leases_active", "Leases held now.", labels=["pool"])
        waiting = GaugeMetricFamily(
            "mapt_leases_waiting",
            "Lease requests this server is waiting on a member for.",
            labels=["pool"],
        )
        counted = sa.select(leases.c.pool, leases.c.served, leases.c.state, sa.func.count())
        with self.database.transaction() as connection:
            rows = connection.execute(
                counted.group_by(leases.c.pool, leases.c.served, leases.c.state)
            ).all()
            names = set(connection.execute(sa.select(pools.c.name)).scalars())
        by_served: Counter[tuple[str, str]] = Counter()
        by_state: Counter[tuple[str, str]] = Counter()
        for pool, how, state, count in rows:
            if how is not None:
                by_served[(pool, how)] += count
            by_state[(pool, state)] += count
        for pool, how in sorted(by_served):
            served.add_metric([pool, how], by_served[(pool, how)])
        now = self.waits.now()
        for pool in sorted(names | {pool for pool, _ in by_state} | set(now)):
            expired.add_metric([pool], by_state[(pool, "expired")])
            active.add_metric([pool], by_state[(pool, "active")])
            waiting.add_metric([pool], now.get(pool, 0))
        yield from (served, expired, active, waiting)
