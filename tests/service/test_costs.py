"""Costs over HTTP: host history recorded by the state machine, priced with the AZ's
spot price history (answered through boto3 by ``tests.harness.price_history``), in the
spot-api's shape; and ``GET /metrics`` counting what happened."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mapt.costs import AwsPrices, Placement
from mapt.service import Database, open_database
from mapt.service._app import Service, create_app
from mapt.service._costs import HostPlacement, host_placement, record_end, record_placement
from mapt.service._schema import host_intervals
from mapt.service._states import HostRequest, HostState
from mapt.service._tokens import create_token
from tests.cli.host_harness import FAMILIES
from tests.costs.scenario import EXPECTED, RUNS, TYPE, ZONE, at, history
from tests.harness.price_history import PriceHistory
from tests.harness.spot_market import installed

# The spot-api's document for an instance's costs (seeds/001, spot-api's README).
SPOT_API_EXAMPLE = {
    "costs": {"actual": 0.1581, "potential": 0.4794},
    "running": {"unit": "hours", "value": 51},
    "savings": {"unit": "percentage", "value": 67.0213},
}
WHERE = HostPlacement(Placement("us-east-1", ZONE, (TYPE,), True, "Linux/UNIX"))


@dataclass
class Api:
    client: TestClient
    service: Service
    database: Database
    market: PriceHistory

    def get(self, path: str) -> Any:
        return self.client.get(path)


@pytest.fixture
def api(database_url: str, aws_env: None) -> Iterator[Api]:
    database = open_database(database_url)
    market = history()
    try:
        with installed(market.handlers()):
            service = Service(database=database, prices=AwsPrices(boto3.Session()))
            service.costs.now = lambda: at(18)
            token = create_token(database, "ci")[1]
            with TestClient(create_app(service)) as client:
                client.headers["Authorization"] = f"Bearer {token}"
                yield Api(client, service, database, market)
    finally:
        database.dispose()


def _fields(tmp_path: Path, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "os": "fedora",
        "spot": True,
        "cpus": 2,
        "memory": 8,
        "compute_families": FAMILIES,
        "backed_url": f"file://{tmp_path / 'state'}",
    }


def _host_with_history(
    api: Api, tmp_path: Path, name: str, runs: Any, where: HostPlacement = WHERE
) -> None:
    """A host record, and the intervals it ran (each ended by an interruption)."""
    api.service.hosts.request(HostRequest.CREATE, None, _fields(tmp_path, name))
    with api.database.transaction() as connection:
        for start, end in runs:
            record_placement(connection, name, where, at=start, reason="interrupted")
            record_end(connection, name, at=end, reason="interrupted")


def test_a_hosts_costs_equal_the_hand_computation_in_the_spot_api_shape(
    api: Api, tmp_path: Path
) -> None:
    _host_with_history(api, tmp_path, "pr-7", RUNS)
    answer = api.get("/v1/hosts/pr-7/costs")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document == EXPECTED
    assert _shape(document) == _shape(SPOT_API_EXAMPLE)
    # Both days count, so the day itself holds everything; the next day nothing.
    assert api.get("/v1/hosts/pr-7/costs?start=2026-11-20&end=2026-11-20").json() == EXPECTED
    assert api.get("/v1/hosts/pr-7/costs?start=2026-11-21").json()["running"]["value"] == 0


def _shape(document: Any) -> Any:
    """Keys and the kind of each value (numbers alike): what a client parses."""
    if isinstance(document, dict):
        return {key: _shape(value) for key, value in document.items()}
    return "number" if isinstance(document, (int, float)) else type(document).__name__


def test_detail_lists_intervals_and_network_at_list_prices_apart(api: Api, tmp_path: Path) -> None:
    _host_with_history(api, tmp_path, "pr-7", RUNS)
    document = api.get("/v1/hosts/pr-7/costs?detail=true").json()
    assert {key: document[key] for key in EXPECTED} == EXPECTED
    assert [(i["start"], i["end"], i["costs"]["actual"]) for i in document["intervals"]] == [
        ("2026-11-20T10:00:00Z", "2026-11-20T12:30:00Z", 0.115),
        ("2026-11-20T13:00:00Z", "2026-11-20T16:00:00Z", 0.0988),
    ]
    listed = {item["resource"]: item for item in document["list_priced"]}
    assert set(listed) == {"network_load_balancer", "public_ipv4"}
    assert listed["network_load_balancer"]["cost"] == 0.1238  # 5.5 h x 0.0225 = 0.12375
    assert listed["public_ipv4"]["hours"] == 11.0  # two addresses for 5.5 hours
    assert listed["public_ipv4"]["list_price"]["usd_per_hour"] == 0.005


def test_a_named_spot_host_lists_its_one_address_and_no_load_balancer(
    api: Api, tmp_path: Path
) -> None:
    # A spot host with a name of its own (dns_zone) has no balancer: its instance's
    # address is all it holds at list price; the spot figures are the same.
    _host_with_history(api, tmp_path, "named", RUNS, replace(WHERE, load_balancer=False))
    document = api.get("/v1/hosts/named/costs?detail=true").json()
    assert {key: document[key] for key in EXPECTED} == EXPECTED
    listed = {item["resource"]: item for item in document["list_priced"]}
    assert set(listed) == {"public_ipv4"}
    assert listed["public_ipv4"]["hours"] == 5.5  # one address for 5.5 hours


@pytest.mark.parametrize(
    ("more", "balanced"),
    [
        ({}, True),
        ({"dns_zone": "ci.example.com"}, False),
        ({"dns_zone": "ci.example.com", "spot_load_balancer": True}, True),
    ],
)
def test_a_placement_records_whether_its_spot_host_has_a_load_balancer(
    more: dict[str, Any], balanced: bool, tmp_path: Path
) -> None:
    chosen = {
        "region": "us-east-1", "availability_zone": ZONE, "availability_zone_id": "use1-az1",
        "instance_types": [TYPE], "spot_price": 0.03, "max_price": 0.04, "score": 9,
    }  # fmt: skip
    fields = {**_fields(tmp_path, "pr-8"), **more}
    where = host_placement(fields, {"allocation": chosen})
    assert (where.placement.spot, where.load_balancer) == (True, balanced)


def test_all_costs_by_pool_and_in_total(api: Api, tmp_path: Path) -> None:
    _host_with_history(api, tmp_path, "pr-7", RUNS)
    pooled = replace(WHERE, pool="ci")
    _host_with_history(api, tmp_path, "warm-1", [(at(10), at(11))], where=pooled)
    document = api.get("/v1/costs?start=2026-11-20").json()
    assert document["hosts"] == EXPECTED
    # warm-1: one hour at 0.0400 against 0.096 on demand.
    assert document["pools"] == {
        "ci": {
            "costs": {"actual": 0.04, "potential": 0.096},
            "running": {"unit": "hours", "value": 1.0},
            "savings": {"unit": "percentage", "value": 58.3333},
        }
    }
    assert document["total"] == {
        "costs": {"actual": 0.2538, "potential": 0.624},
        "running": {"unit": "hours", "value": 6.5},
        "savings": {"unit": "percentage", "value": 59.3349},  # 0.37025 / 0.624
    }


@pytest.mark.parametrize(
    ("query", "parameter", "status"),
    [
        ("start=2026-13-01", "start", 422),
        ("end=20261120", "end", 422),
        ("start=2026-11-21&end=2026-11-20", "end", 422),
    ],
)
def test_bad_days_are_refused_naming_the_parameter(
    api: Api, tmp_path: Path, query: str, parameter: str, status: int
) -> None:
    _host_with_history(api, tmp_path, "pr-7", RUNS)
    for path in ("/v1/hosts/pr-7/costs", "/v1/costs"):
        answer = api.get(f"{path}?{query}")
        assert answer.status_code == status
        assert answer.json()["error"]["message"].startswith(f"{parameter} ")


def test_an_unknown_host_is_404_and_an_unpriceable_one_is_an_error_not_zero(
    api: Api, tmp_path: Path
) -> None:
    assert api.get("/v1/hosts/nobody/costs").status_code == 404
    # Before the history AWS keeps: no price is in force, so the cost is unknown.
    _host_with_history(api, tmp_path, "old", [(at(10, day=1), at(11, day=1))])
    answer = api.get("/v1/hosts/old/costs")
    assert answer.status_code == 502  # an OperationError: exit 1 behind the service
    assert answer.json()["error"]["exit_code"] == 1
    assert "no spot price of m5.large in us-east-1a is known" in answer.json()["error"]["message"]


def _intervals(database: Database, name: str) -> list[tuple[Any, ...]]:
    with database.transaction() as connection:
        query = (
            sa.select(
                host_intervals.c.instance_types,
                host_intervals.c.start_reason,
                host_intervals.c.end_reason,
                host_intervals.c.ended_at.is_(None),
            )
            .where(host_intervals.c.host == name)
            .order_by(host_intervals.c.id)
        )
        return [tuple(row) for row in connection.execute(query)]


def test_the_state_machine_records_the_history(api: Api, tmp_path: Path) -> None:
    hosts = api.service.hosts
    bigger = replace(WHERE, placement=replace(WHERE.placement, instance_types=("m5.xlarge",)))

    def settle(wanted: HostState, **kept: Any) -> None:  # as the host's execution does
        owner = hosts.get("pr-9").execution_id or ""
        assert hosts.settle("pr-9", wanted, execution_id=owner, **kept)

    hosts.request(HostRequest.CREATE, None, _fields(tmp_path, "pr-9"))
    settle(HostState.RUNNING, record={}, placement=WHERE)
    hosts.request(HostRequest.UPDATE, "pr-9", {"timeout": "2h"})
    settle(HostState.RUNNING, record={}, placement=WHERE)  # in place: same
    hosts.request(HostRequest.UPDATE, "pr-9", {"cpus": 4})
    settle(HostState.RUNNING, record={}, placement=bigger)
    settle(HostState.ERROR)
    settle(HostState.RUNNING, record={}, placement=WHERE)
    hosts.request(HostRequest.DELETE, "pr-9")
    settle(HostState.DELETED)
    assert _intervals(api.database, "pr-9") == [
        (["m5.large"], "created", "resized", False),
        (["m5.xlarge"], "resized", "recovered", False),
        (["m5.large"], "recovered", "deleted", False),
    ]


def test_metrics_count_what_happened(api: Api, tmp_path: Path) -> None:
    _host_with_history(api, tmp_path, "pr-7", RUNS)
    hosts, executions = api.service.hosts, api.service.executions
    hosts.request(HostRequest.CREATE, None, _fields(tmp_path, "pr-8"))
    hosts.request(HostRequest.CREATE, None, _fields(tmp_path, "pr-9"))
    claimed = executions.claim("test-server", ["hosts.create"])
    assert claimed is not None and claimed.claim is not None
    executions.succeed(claimed.id, claimed.claim, {})
    hosts.settle(claimed.target, HostState.RUNNING, execution_id=claimed.id, record={})

    answer = api.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
    assert samples[("mapt_hosts", (("pool", ""), ("state", "PENDING")))] == 2
    assert samples[("mapt_hosts", (("pool", ""), ("state", "RUNNING")))] == 1
    created = (("name", "hosts.create"), ("status", "succeeded"))
    assert samples[("mapt_executions", created)] == 1
    assert samples[("mapt_executions", (("name", "hosts.create"), ("status", "pending")))] == 2
    assert samples[("mapt_execution_duration_seconds_count", created)] == 1
    assert samples[("mapt_host_hours_total", (("capacity", "spot"),))] == 5.5
    assert samples[("mapt_host_hours_total", (("capacity", "on-demand"),))] == 0
    assert samples[("mapt_cost_priced", ())] == 1
    assert samples[("mapt_cost_dollars_total", (("kind", "actual"),))] == pytest.approx(0.21375)
    assert samples[("mapt_cost_dollars_total", (("kind", "potential"),))] == pytest.approx(0.528)


def test_metrics_need_a_token(api: Api) -> None:
    del api.client.headers["Authorization"]
    assert api.get("/metrics").status_code == 401
