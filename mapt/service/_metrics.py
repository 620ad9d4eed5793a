"""``GET /metrics``: the service's records as Prometheus metrics, read at each scrape.

Every number comes from the database at scrape time (a custom collector), so each
server behind a load balancer answers the same and a restart loses nothing. The
registry is the service's (``Service.metrics``): a feature adds its own metrics with
``service.metrics.register(collector)``, a ``prometheus_client`` collector whose
``collect`` yields metric families (leases, the event intake's counts, and
interruptions: ``mapt.service._interruptions.InterruptionCollector``).

- ``mapt_hosts{state, pool}``: hosts by state (deleted ones left out), pool from the
  host's open interval (empty: none);
- ``mapt_executions{name, status}`` and ``mapt_execution_duration_seconds{name,
  status}`` (a summary: count and sum over finished executions);
- ``mapt_host_hours_total{capacity}``: hours run on ``spot`` and ``on-demand``;
- ``mapt_cost_dollars_total{kind}``: ``actual`` and ``potential`` USD of every host
  (``mapt_cost_priced`` is 0, and the dollars absent, when pricing failed: unknown is
  not zero).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from mapt.core import MaptError, get_logger
from mapt.service._costs import CostBook, running_hours
from mapt.service._database import Database
from mapt.service._schema import executions, hosts
from mapt.service._states import HostState

_log = get_logger(__name__)


class ServiceCollector(Collector):
    """Hosts, executions, hours and dollars, from the records."""

    def __init__(self, database: Database, costs: CostBook) -> None:
        self.database = database
        self.costs = costs

    def collect(self) -> Iterator[Metric]:
        yield from self._hosts()
        yield from self._executions()
        yield from self._costs()

    def _hosts(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "mapt_hosts", "Hosts by state and pool.", labels=["state", "pool"]
        )
        query = (
            sa.select(hosts.c.state, hosts.c.pool, sa.func.count())
            .where(hosts.c.state != HostState.DELETED.value)
            .group_by(hosts.c.state, hosts.c.pool)
        )
        with self.database.transaction() as connection:
            for state, pool, count in connection.execute(query):
                family.add_metric([state, pool or ""], count)
        yield family

    def _executions(self) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "mapt_executions", "Executions by name and status.", labels=["name", "status"]
        )
        durations = SummaryMetricFamily(
            "mapt_execution_duration_seconds",
            "Time from start to end of finished executions.",
            labels=["name", "status"],
        )
        columns = (
            executions.c.name,
            executions.c.status,
            executions.c.started_at,
            executions.c.finished_at,
        )
        seen: dict[tuple[str, str], list[float | None]] = {}
        with self.database.transaction() as connection:
            for name, status, started, finished in connection.execute(sa.select(*columns)):
                span = None if started is None or finished is None else finished - started
                seen.setdefault((name, status), []).append(
                    None if span is None else span.total_seconds()
                )
        for (name, status), spans in sorted(seen.items()):
            counts.add_metric([name, status], len(spans))
            finished_spans = [span for span in spans if span is not None]
            if finished_spans:
                durations.add_metric(
                    [name, status], count_value=len(finished_spans), sum_value=sum(finished_spans)
                )
        yield counts
        yield durations

    def _costs(self) -> Iterator[Metric]:
        intervals = self.costs.intervals()
        now = self.costs.now()
        hours = CounterMetricFamily(
            "mapt_host_hours", "Hours hosts ran, by capacity.", labels=["capacity"]
        )
        for capacity, value in running_hours(intervals, now).items():
            hours.add_metric([capacity], float(value))
        yield hours
        priced = GaugeMetricFamily(
            "mapt_cost_priced", "1 when every interval could be priced, else 0."
        )
        try:
            report = self.costs.report(intervals, None, now)
        except MaptError as error:
            _log.warning("costs left out of the metrics: %s", error)
            priced.add_metric([], 0)
            yield priced
            return
        priced.add_metric([], 1)
        yield priced
        dollars = CounterMetricFamily(
            "mapt_cost_dollars", "USD of every host's instance, by kind.", labels=["kind"]
        )
        dollars.add_metric(["actual"], float(report.cost.actual_usd))
        dollars.add_metric(["potential"], float(report.cost.potential_usd))
        yield dollars


def service_registry(database: Database, costs: CostBook) -> Any:
    """A registry of the service's own metrics, for features to add theirs to."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(database, costs))
    return registry
