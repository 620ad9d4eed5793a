"""Every way a pool launches a member follows the pool's circuit breaker and the
server's default hosted zone: the convergence loop, ``PUT /v1/pools/NAME/hosts`` and a
lease's cold start.

The app runs in this process over a SQLite file, without a dispatcher: a member's
create stays queued, and its recorded fields are what its create will ask for (spot or
on demand, the regions it avoids, its hosted zone). Interruptions are recorded as the
event intake records them (``host_events``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mapt.hosts import BreakerPolicy
from mapt.service import Database, create_token, open_database
from mapt.service._app import Service, create_app
from mapt.service._host_events import HostEvent, HostEventKind, record_host_event
from mapt.service._schema import host_events, hosts

HOST = {"os": "fedora", "spot": True, "cpus": 2, "memory": 8}
ZONE = "ci.example.com"
POLICY = BreakerPolicy()  # RunsOn's: 2 interruptions in 15 minutes, open for 30


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))
    opened = open_database(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    yield opened
    opened.dispose()


def _api(database: Database, **service: Any) -> TestClient:
    token = create_token(database, f"writer-{secrets.token_hex(3)}")[1]
    client = TestClient(create_app(Service(database=database, **service)))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _pool(api: TestClient, name: str, host: dict[str, Any], **strategy: Any) -> dict[str, Any]:
    answer = api.post(
        "/v1/pools",
        json={
            "name": name,
            "capacity": {"target": 0, "minimum": 0, "maximum": 5},
            "host": host,
            "strategy": strategy,
        },
    )
    assert answer.status_code == 201, answer.text
    pool: dict[str, Any] = answer.json()["pool"]
    return pool


def _member_fields(api: TestClient, pool: str) -> dict[str, dict[str, Any]]:
    answer = api.get(f"/v1/pools/{pool}/hosts")
    assert answer.status_code == 200, answer.text
    return {member["name"]: member["fields"] for member in answer.json()["hosts"]}


def _added(api: TestClient, pool: str) -> dict[str, Any]:
    """``PUT /v1/pools/POOL/hosts``: the fields of the member it launched."""
    before = _member_fields(api, pool)
    answer = api.put(f"/v1/pools/{pool}/hosts")
    assert answer.status_code == 202, answer.text
    [(_name, fields)] = [
        item for item in _member_fields(api, pool).items() if item[0] not in before
    ]
    return fields


def _cold_started(api: TestClient, pool: str) -> dict[str, Any]:
    """A lease on a pool with no idle member, cold start allowed: its member's fields."""
    answer = api.post(
        f"/v1/pools/{pool}/leases", json={"ttl": "30m", "holder": "ci", "allow_cold_start": True}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["host"]["state"] == "PENDING"
    fields: dict[str, Any] = answer.json()["host"]["fields"]
    return fields


def _interrupted(database: Database, pool: str, region: str, *, minutes_ago: float) -> None:
    """Two of ``pool``'s spot instances in ``region`` got the two-minute warning."""
    at = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    with database.transaction() as connection:
        for index in range(POLICY.interruptions):
            record_host_event(
                connection,
                HostEvent(
                    id=f"evt-{pool}-{index}", kind=HostEventKind.INTERRUPTION_WARNING,
                    host=f"{pool}-00000{index}", pool=pool, region=region,
                    zone=f"{region}a", instance_id=f"i-{pool}-{index}", action="terminate",
                    instance_state=None, event_time=at, received_at=at,
                ),
            )  # fmt: skip


def _cooled_down(database: Database, pool: str) -> None:
    """The interruptions are now older than the cooldown: the breaker closed."""
    later = POLICY.cooldown + timedelta(minutes=1)
    with database.transaction() as connection:
        recorded = connection.execute(
            sa.select(host_events.c.id, host_events.c.event_time).where(host_events.c.pool == pool)
        ).all()
        for event_id, at in recorded:
            connection.execute(
                host_events.update()
                .where(host_events.c.id == event_id)
                .values(event_time=at - later)
            )


def test_with_the_breaker_open_added_and_cold_started_members_go_on_demand(
    database: Database,
) -> None:
    """A pool that falls back to on demand: while its breaker is open in us-east-1,
    the members ``add`` and a cold start launch are on demand there; after the
    cooldown they are spot members as the template says."""
    with _api(database) as api:
        _pool(api, "od", HOST, fallback_on_demand=True)
        _interrupted(database, "od", "us-east-1", minutes_ago=1)
        for fields in (_added(api, "od"), _cold_started(api, "od")):
            assert (fields["spot"], fields.get("region")) == (False, "us-east-1"), fields
            assert "spot_fallback_on_demand" not in fields

        _cooled_down(database, "od")
        for fields in (_added(api, "od"), _cold_started(api, "od")):
            assert (fields["spot"], fields.get("region")) == (True, None), fields
            assert fields["spot_fallback_on_demand"] is True
        # Another pool's breaker is not this pool's.
        _interrupted(database, "other", "us-east-1", minutes_ago=1)
        assert _added(api, "od")["spot"] is True


def test_with_the_breaker_open_spot_members_avoid_the_region(database: Database) -> None:
    """A pool without the fallback: its added and cold-started members stay on spot
    and leave the open region (added to the template's own exclusions); after the
    cooldown they may land there again."""
    with _api(database) as api:
        _pool(api, "sp", {**HOST, "spot_excluded_regions": ["eu-west-1"]})
        _interrupted(database, "sp", "us-east-1", minutes_ago=1)
        for fields in (_added(api, "sp"), _cold_started(api, "sp")):
            assert fields["spot"] is True
            assert fields["spot_excluded_regions"] == ["eu-west-1", "us-east-1"], fields

        _cooled_down(database, "sp")
        for fields in (_added(api, "sp"), _cold_started(api, "sp")):
            assert fields["spot_excluded_regions"] == ["eu-west-1"], fields


def _ran(database: Database, member: str, zone: str, *others: str, spot: bool) -> None:
    """Member ``member`` runs in ``zone``, its allocation ranking ``others`` next (on
    spot with a price, on demand without, as a create records them)."""
    price = 0.03 if spot else None
    allocation = {
        "availability_zone": zone,
        "spot_price": price,
        "candidates": [{"availability_zone": other, "spot_price": price} for other in others],
    }
    with database.transaction() as connection:
        connection.execute(
            hosts.update()
            .where(hosts.c.name == member)
            .values(state="RUNNING", record={"allocation": allocation})
        )


def test_after_the_breaker_closes_spot_members_are_pinned_only_to_spot_zones(
    database: Database,
) -> None:
    """The on-demand members the open breaker launched ranked zones that offer the
    types on demand (maybe none on spot): once the breaker closes, a spot member is
    pinned to a zone of the newest spot member's ranking, or to none when no spot
    member ever ran (where a pinned one found no spot offer, failed and was deleted)."""
    with _api(database) as api:
        _pool(api, "mixed", HOST, fallback_on_demand=True)
        spot = _added(api, "mixed")
        _ran(database, spot["name"], "us-east-1b", "us-east-1d", "ap-northeast-1a", spot=True)
        _interrupted(database, "mixed", "ap-northeast-1", minutes_ago=1)
        on_demand = _added(api, "mixed")
        assert (on_demand["spot"], on_demand["region"]) == (False, "ap-northeast-1")
        _ran(database, on_demand["name"], "ap-northeast-1c", "ap-northeast-1d", spot=False)
        _cooled_down(database, "mixed")
        after = _added(api, "mixed")
        # The spot ranking's least crowded zone (us-east-1b has the first member).
        assert (after["spot"], after.get("availability_zone")) == (True, "us-east-1d"), after

        _pool(api, "fresh", HOST, fallback_on_demand=True)
        _interrupted(database, "fresh", "ap-northeast-1", minutes_ago=1)
        on_demand = _added(api, "fresh")
        _ran(database, on_demand["name"], "ap-northeast-1c", "ap-northeast-1d", spot=False)
        _cooled_down(database, "fresh")
        fields = _added(api, "fresh")
        assert fields["spot"] is True and "availability_zone" not in fields, fields


def test_the_servers_breaker_policy_is_the_one_followed(database: Database) -> None:
    """``mapt serve --breaker-interruptions 3``: two interruptions open nothing."""
    with _api(database, breaker=BreakerPolicy(interruptions=3)) as api:
        _pool(api, "lax", HOST, fallback_on_demand=True)
        _interrupted(database, "lax", "us-east-1", minutes_ago=1)
        assert _added(api, "lax")["spot"] is True


def test_a_pool_created_without_a_zone_gets_the_servers_and_keeps_it(database: Database) -> None:
    """``mapt serve --dns-zone``: a pool whose template has no dns_zone field records
    the server's zone; each member has it under its own name (its record is
    ``<member>.<zone>``), also once the server runs with another default."""
    with _api(database, dns_zone=ZONE) as api:
        assert _pool(api, "named", HOST)["host"]["dns_zone"] == ZONE
        first, cold = _added(api, "named"), _cold_started(api, "named")
    for fields in (first, cold):
        assert fields["dns_zone"] == ZONE
        assert fields["name"].startswith("named-")
    assert first["name"] != cold["name"]
    with _api(database, dns_zone="other.example.org") as api:
        assert _added(api, "named")["dns_zone"] == ZONE
        assert _pool(api, "later", HOST)["host"]["dns_zone"] == "other.example.org"


def test_a_pools_own_zone_or_null_wins_over_the_servers(database: Database) -> None:
    with _api(database, dns_zone=ZONE) as api:
        assert _pool(api, "nameless", {**HOST, "dns_zone": None})["host"]["dns_zone"] is None
        assert _added(api, "nameless")["dns_zone"] is None
        own = _pool(api, "own", {**HOST, "dns_zone": "b.example.org"})
        assert own["host"]["dns_zone"] == "b.example.org"
        assert _added(api, "own")["dns_zone"] == "b.example.org"
        # A new template without the field gets the server's zone too.
        changed = api.patch("/v1/pools/nameless", json={"host": HOST})
        assert changed.status_code == 200 and changed.json()["pool"]["host"]["dns_zone"] == ZONE
        assert _added(api, "nameless")["dns_zone"] == ZONE


def test_a_server_without_a_zone_adds_none(database: Database) -> None:
    with _api(database) as api:
        assert "dns_zone" not in _pool(api, "plain", HOST)["host"]
        assert "dns_zone" not in _added(api, "plain")


def test_a_named_pools_running_member_connects_by_its_own_name(
    database: Database, tmp_path: Path, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member's create runs (here, on simulated AWS with the hosted zone): its
    host and its connection carry ``<member>.<zone>``, the name CI jobs connect to.
    (``simulated_aws`` is a worker process's: ``aws_env`` and the region list's patch
    undo what it changes in this one.)"""
    import boto3
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    from mapt.service import ExecutionContext
    from mapt.service._pools import run_add
    from tests.harness.service_hosts import simulated_aws
    from tests.harness.service_services import simulated_services

    monkeypatch.setattr(RegionsAndZonesBackend, "regions", list(RegionsAndZonesBackend.regions))
    services = simulated_services(tmp_path / "engine.pickle")
    template = {**HOST, "spot": False, "backed_url": f"file://{tmp_path / 'stacks'}"}
    with _api(database, dns_zone=ZONE, host_services=services) as api:
        _pool(api, "web", template)
        added = api.put("/v1/pools/web/hosts")
        assert added.status_code == 202, added.text
        execution = added.json()["execution"]
        [member] = _member_fields(api, "web")
        with simulated_aws():
            boto3.client("route53", region_name="us-east-1").create_hosted_zone(
                Name=ZONE, CallerReference="pool-launches"
            )
            run_add(
                ExecutionContext(
                    execution["id"], "pools.add", execution["target"],
                    {"members": [member]}, 1, services, database,
                )
            )  # fmt: skip
        host = api.get(f"/v1/hosts/{member}").json()["host"]
        assert (host["state"], host["dns_name"]) == ("RUNNING", f"{member}.{ZONE}")
        connection = api.get(f"/v1/hosts/{member}/connection").json()["connection"]
        assert connection["address"] == f"{member}.{ZONE}"
        assert connection["ip_address"] == host["address"] != connection["address"]
