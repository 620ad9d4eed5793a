"""``on_host_event`` and the interruption metrics on the records alone (no server, no AWS).

A host row is written as a create leaves it (RUNNING, an open cost interval); events
are recorded and handed on as the intake does, in one transaction; what changed is read
back, and ``GET /metrics``' collector is parsed with prometheus-client's parser.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mapt.costs import Placement
from mapt.hosts import BreakerPolicy, create_request
from mapt.service import Database, open_database
from mapt.service._costs import HostPlacement, record_placement
from mapt.service._executions import Executions
from mapt.service._host_events import HostEvent, HostEventKind, record_host_event
from mapt.service._hosts import Hosts
from mapt.service._interruptions import (
    InterruptionCollector,
    breaker_fields,
    on_host_event,
    recorded_breakers,
)
from mapt.service._schema import executions, host_intervals, hosts

# When the test's events happen: set per test (``events_happen_now``), because the
# breaker metric reads the real clock, and a time taken at import is older than the
# breaker's cooldown by the time a long, loaded run reaches the test.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
FIELDS = {"name": "pr-1", "os": "fedora", "spot": True, "cpus": 2, "memory": 8}


@pytest.fixture(autouse=True)
def events_happen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(globals(), "NOW", datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    opened = open_database(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    yield opened
    opened.dispose()


def _host(database: Database, name: str, state: str = "RUNNING", pool: str | None = None) -> None:
    with database.transaction() as connection:
        connection.execute(
            hosts.insert().values(
                name=name, state=state, fields={**FIELDS, "name": name}, record=None,
                execution_id=None, created_at=NOW, updated_at=NOW, pool=pool,
            )
        )  # fmt: skip
        placement = Placement("us-east-1", "us-east-1a", ("m5.large",), True, "Linux/UNIX")
        record_placement(
            connection, name, HostPlacement(placement, pool=pool), at=NOW, reason="created"
        )


def _event(kind: HostEventKind, host: str, **more: Any) -> HostEvent:
    values: dict[str, Any] = {
        "id": f"evt-{host}-{kind.value}", "kind": kind, "host": host, "pool": None,
        "region": "us-east-1", "zone": "us-east-1a", "instance_id": f"i-{host}",
        "action": "terminate" if kind is HostEventKind.INTERRUPTION_WARNING else None,
        "instance_state": None, "event_time": NOW, "received_at": NOW, **more,
    }  # fmt: skip
    return HostEvent(**values)


def _deliver(database: Database, *events: HostEvent) -> None:
    store = Hosts(database, Executions(database))
    for event in events:
        with database.transaction() as connection:
            if record_host_event(connection, event):
                on_host_event(store, connection, event)


def _row(database: Database, name: str) -> dict[str, Any]:
    with database.transaction() as connection:
        row = connection.execute(sa.select(hosts).where(hosts.c.name == name)).one()
        return dict(row._mapping)


def _replacements(database: Database) -> list[dict[str, Any]]:
    with database.transaction() as connection:
        rows = connection.execute(
            sa.select(executions).where(executions.c.name == "hosts.replace")
        ).all()
        return [dict(row._mapping) for row in rows]


def test_a_warning_takes_a_running_host_to_error_ends_its_interval_and_submits_its_replacement(
    database: Database,
) -> None:
    _host(database, "pr-1")
    warning = _event(HostEventKind.INTERRUPTION_WARNING, "pr-1")
    _deliver(database, warning, warning)  # a duplicate is recorded as nothing new

    row = _row(database, "pr-1")
    assert (row["state"], row["error_type"]) == ("ERROR", "SpotInterruption")
    terminate_at = (NOW + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    assert row["error_message"] == (
        f"spot interruption warning for i-pr-1 in us-east-1a (terminate at {terminate_at})"
    )
    [replacement] = _replacements(database)
    assert row["execution_id"] == replacement["id"]
    assert (replacement["status"], replacement["target"]) == ("pending", "pr-1")
    arguments = replacement["arguments"]
    assert (arguments["instance"], arguments["region"], arguments["event"]) == (
        "i-pr-1",
        "us-east-1",
        warning.id,
    )
    assert arguments["fields"]["name"] == "pr-1"
    with database.transaction() as connection:
        [interval] = connection.execute(sa.select(host_intervals)).all()
    assert (interval.end_reason, interval.ended_at) == ("interrupted", NOW)


def test_a_rebalance_recommendation_acts_too_and_a_state_change_or_a_busy_host_only_records(
    database: Database,
) -> None:
    _host(database, "pr-2")
    _host(database, "pr-3", state="UPDATING")
    _host(database, "pr-4")
    _deliver(
        database,
        _event(HostEventKind.REBALANCE_RECOMMENDATION, "pr-2"),
        _event(HostEventKind.INTERRUPTION_WARNING, "pr-3"),
        _event(HostEventKind.STATE_CHANGE, "pr-4", instance_state="terminated"),
    )
    assert _row(database, "pr-2")["error_message"].startswith(
        "rebalance recommendation for i-pr-2 in us-east-1a (at "
    )
    assert [r["target"] for r in _replacements(database)] == ["pr-2"]
    assert _row(database, "pr-3")["state"] == "UPDATING"
    assert _row(database, "pr-4")["state"] == "RUNNING"
    assert _row(database, "pr-4")["error_type"] is None


def test_a_later_event_about_an_instance_already_being_replaced_acts_no_more(
    database: Database,
) -> None:
    # A rebalance recommendation, then AWS's two-minute warning for the same machine:
    # one replacement. Once the host runs again (on the replacement), a late delivery
    # about the retired machine leaves it running; a warning for the new one acts.
    _host(database, "pr-5")
    _deliver(database, _event(HostEventKind.REBALANCE_RECOMMENDATION, "pr-5"))
    with database.transaction() as connection:
        connection.execute(hosts.update().where(hosts.c.name == "pr-5").values(state="RUNNING"))
    _deliver(database, _event(HostEventKind.INTERRUPTION_WARNING, "pr-5"))
    assert _row(database, "pr-5")["state"] == "RUNNING"
    assert len(_replacements(database)) == 1
    _deliver(
        database,
        _event(HostEventKind.INTERRUPTION_WARNING, "pr-5", id="evt-new", instance_id="i-new"),
    )
    assert _row(database, "pr-5")["state"] == "ERROR"
    assert [r["arguments"]["instance"] for r in _replacements(database)] == ["i-pr-5", "i-new"]


def test_two_interruptions_of_a_pool_open_its_breaker_which_its_launches_avoid(
    database: Database,
) -> None:
    for name in ("ci-1", "ci-2"):
        _host(database, name, pool="ci")
    _deliver(
        database,
        *(
            _event(HostEventKind.INTERRUPTION_WARNING, name, pool="ci", id=f"evt-{name}")
            for name in ("ci-1", "ci-2")
        ),
    )
    policy = BreakerPolicy()
    with database.transaction() as connection:
        opened = recorded_breakers(connection, policy, NOW + timedelta(minutes=1))
        closed = recorded_breakers(connection, policy, NOW + timedelta(minutes=30))
    assert set(opened) == {("ci", "us-east-1")}
    assert closed == {}

    template = {**FIELDS, "name": "ci-3", "spot_excluded_regions": "eu-west-1"}
    on_spot = breaker_fields(template, "ci", opened, fallback_on_demand=False)
    assert on_spot["spot"] is True
    assert on_spot["spot_excluded_regions"] == ["eu-west-1", "us-east-1"]
    named = {"dns_zone": "ci.example.com", "spot_load_balancer": True}
    on_demand = breaker_fields(
        {**template, **named, "spot_fallback_on_demand": True},
        "ci",
        opened,
        fallback_on_demand=True,
    )
    assert on_demand["spot"] is False and on_demand["region"] == "us-east-1"
    assert not {"spot_excluded_regions", "spot_fallback_on_demand", "spot_load_balancer"} & set(
        on_demand
    )
    create_request(dict(on_demand), name=str)  # a create the API accepts: no spot tuning left
    # Another pool, or a closed breaker, launches as its template says.
    assert breaker_fields(template, "other", opened, fallback_on_demand=True) == template
    assert breaker_fields(template, "ci", closed, fallback_on_demand=True) == template

    registry = CollectorRegistry(auto_describe=False)
    registry.register(InterruptionCollector(database, policy))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    key = (("kind", "interruption-warning"), ("pool", "ci"), ("region", "us-east-1"))
    assert samples[("mapt_interruptions_total", key)] == 2
    assert samples[("mapt_breaker_open", (("pool", "ci"), ("region", "us-east-1")))] == 1
    # Both replacements are still to run: none has ended yet.
    assert {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "mapt_replacements_total"
    } == {"in-place": 0, "moved": 0, "on-demand": 0, "failed": 0}


class _BrokenEngine:
    """An engine factory that fails with ``failure`` as soon as it is asked for."""

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    def __call__(self, secrets_provider: str | None, debug: bool) -> Any:
        raise self.failure


def _replacing(database: Database, tmp_path: Path, name: str, failure: BaseException) -> Any:
    """The ``hosts.replace`` execution of an interrupted host ``name``, on an engine
    failing with ``failure``."""
    from mapt.hosts import HostServices
    from mapt.service._workers import ExecutionContext

    _host(database, name)
    _deliver(database, _event(HostEventKind.INTERRUPTION_WARNING, name))
    [replacement] = _replacements(database)
    arguments = dict(replacement["arguments"])
    arguments["fields"] = {**arguments["fields"], "backed_url": f"file://{tmp_path / 'state'}"}
    return ExecutionContext(
        execution_id=replacement["id"],
        name="hosts.replace",
        target=name,
        arguments=arguments,
        attempt=1,
        services=HostServices(engine=_BrokenEngine(failure)),
        database=database,
    )


def test_a_replacement_failing_on_any_exception_leaves_the_host_error_saying_what_failed(
    database: Database, tmp_path: Path
) -> None:
    from mapt.core import register_secret
    from mapt.service._interruptions import InterruptionSettings, run_replace

    register_secret("ghp_s3cr3tvalue")
    bug = RuntimeError("state reader broke holding token ghp_s3cr3tvalue")
    context = _replacing(database, tmp_path, "pr-9", bug)
    reason = _row(database, "pr-9")["error_message"]

    # The execution fails (the worker records it failed, never succeeded)...
    with pytest.raises(RuntimeError, match="state reader broke"):
        run_replace(context, InterruptionSettings())
    # ...and the host says the interruption, that its replacement failed, and why.
    row = _row(database, "pr-9")
    assert row["state"] == "ERROR"
    assert row["error_type"] == "InternalError"
    assert row["error_message"] == (
        f"{reason}; the replacement failed: RuntimeError: state reader broke holding token ***"
    )
    assert row["error_exit_code"] == 1


def test_a_replacement_stopped_with_its_server_is_not_recorded_as_failed(
    database: Database, tmp_path: Path
) -> None:
    from mapt.core import Interrupted
    from mapt.service._interruptions import InterruptionSettings, run_replace

    context = _replacing(database, tmp_path, "pr-10", Interrupted(signal.SIGTERM))
    before = _row(database, "pr-10")

    # The stop passes through, for the worker to release the execution to run again.
    with pytest.raises(Interrupted):
        run_replace(context, InterruptionSettings())
    after = _row(database, "pr-10")
    assert (after["state"], after["error_message"]) == ("ERROR", before["error_message"])
    assert "the replacement failed" not in after["error_message"]


def test_a_replacement_cancelled_midway_leaves_the_host_error_saying_it_was_stopped(
    database: Database, tmp_path: Path
) -> None:
    from mapt.core import Interrupted
    from mapt.service._interruptions import InterruptionSettings, run_replace

    context = _replacing(database, tmp_path, "pr-11", Interrupted(signal.SIGINT))
    reason = _row(database, "pr-11")["error_message"]
    Executions(database).cancel(context.execution_id)

    # A cancel is no hand-back: the host says its replacement stopped, as a recovery's does.
    with pytest.raises(Interrupted):
        run_replace(context, InterruptionSettings())
    row = _row(database, "pr-11")
    assert (row["state"], row["error_type"], row["error_exit_code"]) == (
        "ERROR",
        "Interrupted",
        130,
    )
    assert row["error_message"] == f"{reason}; the replacement failed: interrupted by SIGINT"
