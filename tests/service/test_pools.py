"""Pools over HTTP: members converge to the target, scaling spares leased members, the
FaaSpot verbs are executions, leases hand out warm members and get them back.

One server for the module (its members are made on simulated AWS by worker
processes, as ``test_hosts`` makes hosts); each test has a pool of its own. The tests
drive the convergence passes themselves (``POST /v1/test/pools/NAME/converge``: the
pass the leader's loop runs), so no test waits for a loop's interval.
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mapt.pools import Capacity
from mapt.service import create_token, open_database
from mapt.service._app import Service, create_app
from mapt.service._executions import Executions
from mapt.service._hosts import Hosts
from mapt.service._pools import Pools, Strategy
from mapt.service._schema import hosts as hosts_table
from mapt.service._states import HostRequest, HostState
from tests.cli.host_harness import FAMILIES
from tests.harness.postgres import on_sqlite_only
from tests.harness.pulumi_mocks import FAKE_PRIVATE_KEY_PEM
from tests.harness.sandbox_service import metric_samples
from tests.harness.service import ServerProcess, make_token, running, wait_for

_SETTLE = 600.0


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("pools-server")
    database_url = f"sqlite:///{folder / 'records' / 'service.sqlite3'}"
    with running(ServerProcess(database_url, folder / "server.log", workers=3)) as started:
        yield started


@pytest.fixture(scope="module")
def client(shared_server: ServerProcess) -> Iterator[httpx.Client]:
    with shared_server.client(make_token(shared_server.database_url, "ci")) as opened:
        yield opened


def _template(tmp_path: Path) -> dict[str, Any]:
    return {
        "os": "fedora",
        "spot": True,
        "cpus": 2,
        "memory": 8,
        "compute_families": FAMILIES,
        "backed_url": f"file://{tmp_path / 'state'}",
    }


def _pool_name() -> str:
    return f"ci-{secrets.token_hex(3)}"


def _create(
    client: httpx.Client, tmp_path: Path, *, target: int, maximum: int, **strategy: Any
) -> str:
    name = _pool_name()
    answer = client.post(
        "/v1/pools",
        json={
            "name": name,
            "capacity": {"target": target, "minimum": 0, "maximum": maximum},
            "host": _template(tmp_path),
            "strategy": strategy,
        },
    )
    assert answer.status_code == 201, answer.text
    return name


def _members(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/pools/{name}/hosts")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["hosts"])


def _converged(client: httpx.Client, name: str, running_members: int) -> list[dict[str, Any]]:
    """Pass after pass until exactly ``running_members`` members are RUNNING and none
    is on its way (PENDING, DELETING); the members then."""

    def settled() -> list[dict[str, Any]] | None:
        converge = client.post(f"/v1/test/pools/{name}/converge")
        assert converge.status_code == 200, converge.text
        members = _members(client, name)
        states = [member["state"] for member in members]
        if states.count("RUNNING") == running_members and set(states) == {"RUNNING"}:
            return members
        assert "ERROR" not in states, members
        return None

    return list(wait_for(settled, timeout=_SETTLE, interval=0.3))


def _interval_pools(server: ServerProcess, host: str) -> list[str | None]:
    """The pool each of the host's cost intervals is counted for."""
    import sqlalchemy as sa

    from mapt.service._schema import host_intervals

    database = open_database(server.database_url)
    try:
        with database.transaction() as connection:
            query = sa.select(host_intervals.c.pool).where(host_intervals.c.host == host)
            return [row.pool for row in connection.execute(query)]
    finally:
        database.dispose()


def _mapt(server: ServerProcess, *args: str) -> Any:
    """``mapt ARGS --server URL`` in this process, with the module's token."""
    from typer.testing import CliRunner

    from mapt.cli import app

    token = make_token(server.database_url, f"cli-{secrets.token_hex(3)}")
    return CliRunner().invoke(
        app, [*args, "--server", server.url], env={"MAPT_TOKEN": token, "GITHUB_OUTPUT": ""}
    )


def test_members_are_pinned_to_zones_spread_over_the_ranked_offers(
    client: httpx.Client, tmp_path: Path
) -> None:
    """Spot members of one template would all go to the market's best zone: one
    scouts, the others are pinned to the zones it ranked, the least crowded first.
    A new template then replaces the idle members, never the leased one."""
    name = _create(client, tmp_path, target=3, maximum=3)
    scout, *pinned = _converged(client, name, 3)
    assert "availability_zone" not in scout["fields"]
    ranked = [scout["allocation"]["availability_zone"]] + [
        offer["availability_zone"] for offer in scout["allocation"]["candidates"]
    ]
    # The replayed market has two zones for this shape: the second, then the first.
    assert len(ranked) == 2
    assert [m["fields"]["availability_zone"] for m in pinned] == [ranked[1], ranked[0]]
    assert [m["allocation"]["availability_zone"] for m in pinned] == [ranked[1], ranked[0]]

    leased = _lease(client, name)
    assert leased.status_code == 201, leased.text
    held = leased.json()["lease"]["host"]
    changed = client.patch(
        f"/v1/pools/{name}", json={"host": {**_template(tmp_path), "disk_size": 120}}
    )
    assert changed.status_code == 200 and changed.json()["pool"]["template"] == 2, changed.text
    after = _converged(client, name, 3)
    templates = {m["name"]: m["template"] for m in after}
    assert templates.pop(held) == 1 and set(templates.values()) == {2}
    assert {m["fields"]["disk_size"] for m in after if m["name"] != held} == {120}
    # Spread again: each zone holds its share.
    zones = [m["allocation"]["availability_zone"] for m in after]
    assert sorted(zones.count(zone) for zone in ranked) == [1, 2]


def _lease(client: httpx.Client, name: str, **body: Any) -> httpx.Response:
    return client.post(f"/v1/pools/{name}/leases", json={"ttl": "30m", "holder": "ci", **body})


@pytest.fixture(scope="module")
def warm(client: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A pool of one RUNNING member whose leases give it back ("keep"), for the tests
    that lease and release within themselves (each leaves it as it found it)."""
    name = _create(client, tmp_path_factory.mktemp("warm"), target=1, maximum=1, recycle="keep")
    _converged(client, name, 1)
    return name


def test_a_pool_converges_and_scaling_never_removes_a_leased_member(
    client: httpx.Client, tmp_path: Path
) -> None:
    # Up from 2 to 3, then down to 2: the leased member stays and one idle member goes,
    # not every idle one (each member is a create and a delete: as few as that takes).
    name = _create(client, tmp_path, target=2, maximum=3)
    members = _converged(client, name, 2)
    assert all(member["template"] == 1 for member in members)
    shown = client.get(f"/v1/pools/{name}").json()["pool"]
    assert shown["members"] == {"by_state": {"RUNNING": 2}, "leased": 0, "idle": 2}

    leased = _lease(client, name)
    assert leased.status_code == 201, leased.text
    held = leased.json()["lease"]

    scaled = client.patch(f"/v1/pools/{name}", json={"capacity": {"target": 3}})
    assert scaled.status_code == 200, scaled.text
    assert len(_converged(client, name, 3)) == 3

    down = client.patch(f"/v1/pools/{name}", json={"capacity": {"target": 2}})
    assert down.status_code == 200, down.text
    remaining = _converged(client, name, 2)
    assert held["host"] in {member["name"] for member in remaining}
    shown = client.get(f"/v1/pools/{name}").json()["pool"]
    assert shown["members"] == {"by_state": {"RUNNING": 2}, "leased": 1, "idle": 1}

    # Released under "replace": destroyed now, and a fresh member takes its place.
    released = client.delete(f"/v1/pools/{name}/leases/{held['id']}")
    assert released.status_code == 200, released.text
    assert released.json()["lease"]["state"] == "released"
    destroy = released.json()["execution"]
    assert destroy["name"] == "hosts.delete" and destroy["target"] == held["host"]
    again = client.delete(f"/v1/pools/{name}/leases/{held['id']}")
    assert again.status_code == 409
    after = _converged(client, name, 2)
    assert held["host"] not in {member["name"] for member in after}
    assert client.get(f"/v1/hosts/{held['host']}").json()["host"]["state"] == "DELETED"


def test_add_and_remove_are_executions_bounded_by_the_capacity(
    client: httpx.Client, shared_server: ServerProcess, tmp_path: Path
) -> None:
    name = _create(client, tmp_path, target=0, maximum=1)
    added = client.put(f"/v1/pools/{name}/hosts?wait=true&timeout=600", timeout=None)
    assert added.status_code == 200, added.text
    execution = added.json()["execution"]
    assert execution["name"] == "pools.add" and execution["status"] == "succeeded", execution
    (member,) = _members(client, name)
    assert execution["result"]["hosts"] == [member["name"]]
    assert member["state"] == "RUNNING" and member["address"]
    assert client.get(f"/v1/pools/{name}").json()["pool"]["capacity"]["target"] == 1
    # Its running time is the pool's: GET /v1/pools/NAME/costs prices these intervals.
    assert _interval_pools(shared_server, member["name"]) == [name]
    assert client.get("/v1/pools/nobody/costs").status_code == 404

    over = client.put(f"/v1/pools/{name}/hosts", params={"count": 1})
    assert over.status_code == 409, over.text
    assert "above its maximum 1" in over.json()["error"]["message"]
    unknown = client.delete(f"/v1/pools/{name}/hosts", params={"host": "someone-else"})
    assert unknown.status_code == 404

    # Through the CLI: remove that member by its address, waiting for the destroy.
    removed = _mapt(shared_server, "pool", "remove", name, "--ip", member["address"])
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == f"hosts.delete {member['name']}: succeeded\n"
    assert client.get(f"/v1/hosts/{member['name']}").json()["host"]["state"] == "DELETED"
    assert _members(client, name) == []
    # ... add one, and remove it over HTTP with ?wait=true.
    readded = _mapt(shared_server, "pool", "add", name, "--count", "1")
    assert readded.exit_code == 0, readded.output
    assert readded.stdout == f"pools.add pools/{name}: succeeded\n"
    (member,) = _members(client, name)
    assert member["state"] == "RUNNING"
    refused = _mapt(shared_server, "pool", "add", name)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("Error: ") and "above its maximum 1" in refused.stderr
    removed = client.delete(
        f"/v1/pools/{name}/hosts", params={"wait": "true", "timeout": "600"}, timeout=None
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["execution"]["name"] == "hosts.delete"
    assert removed.json()["execution"]["target"] == member["name"]
    assert removed.json()["execution"]["status"] == "succeeded"
    assert _members(client, name) == []
    assert client.get(f"/v1/pools/{name}").json()["pool"]["capacity"]["target"] == 0
    # The loop keeps what the verbs made: the target moved with them.
    assert client.post(f"/v1/test/pools/{name}/converge").json() == {"launch": [], "remove": []}
    below = client.delete(f"/v1/pools/{name}/hosts")
    assert below.status_code == 409 and "below its minimum 0" in below.json()["error"]["message"]


def test_a_lease_hands_out_an_idle_member_and_a_full_pool_answers_423(
    client: httpx.Client, warm: str
) -> None:
    (member,) = _members(client, warm)
    answer = _lease(client, warm, holder="job-7")
    assert answer.status_code == 201, answer.text
    document = answer.json()
    try:
        assert document["lease"]["host"] == member["name"]
        assert document["lease"]["holder"] == "job-7" and document["lease"]["state"] == "active"
        assert document["connection"]["address"] == member["address"]
        assert document["connection"]["private_key"] == FAKE_PRIVATE_KEY_PEM
        # At maximum with nothing idle: 423 at once, and after waiting too (exit 3).
        busy = _lease(client, warm)
        assert busy.status_code == 423, busy.text
        assert busy.json()["error"]["exit_code"] == 3
        assert f"pool {warm!r} has no idle member" in busy.json()["error"]["message"]
        waited = _lease(client, warm, wait=0.6, allow_cold_start=True)
        assert waited.status_code == 423 and "after 0.6s" in waited.json()["error"]["message"]
        refused = client.delete(f"/v1/pools/{warm}/hosts", params={"host": member["name"]})
        assert refused.status_code == 409, refused.text
        assert "never removed" in refused.json()["error"]["message"]
    finally:
        kept = client.delete(f"/v1/pools/{warm}/leases/{document['lease']['id']}")
    assert kept.status_code == 200 and kept.json()["execution"] is None  # "keep": idle again
    assert _members(client, warm)[0]["leased"] is False


def test_mapt_pool_lease_writes_the_connection_files_of_a_host_create(
    client: httpx.Client, shared_server: ServerProcess, warm: str, tmp_path: Path
) -> None:
    (member,) = _members(client, warm)
    folder = tmp_path / "conn"
    leased = _mapt(
        shared_server, "pool", "lease", warm, "--conn-details-output", str(folder),
        "--holder", "job-9", "--ttl", "10m",
    )  # fmt: skip
    assert leased.exit_code == 0, leased.output
    lease_id = leased.stdout.strip()
    try:
        files = {p.name: (p.read_text(), p.stat().st_mode & 0o777) for p in folder.iterdir()}
        assert files == {
            "host": (member["address"] + "\n", 0o600),
            "username": ("fedora\n", 0o600),
            "id_rsa": (FAKE_PRIVATE_KEY_PEM.rstrip("\n") + "\n", 0o600),
        }
        shown = _mapt(shared_server, "pool", "show", warm)
        assert f"{member['name']}  RUNNING  {member['address']} leased by job-9" in shown.stdout
    finally:
        released = _mapt(shared_server, "pool", "release", warm, lease_id)
    assert released.exit_code == 0, released.output
    assert released.stdout == f"{lease_id} released ({member['name']}; kept idle)\n"
    again = _mapt(shared_server, "pool", "release", warm, lease_id)
    assert again.exit_code == 2 and "released already" in again.stderr


def test_refresh_ip_gives_each_idle_member_a_new_address(
    client: httpx.Client, shared_server: ServerProcess, warm: str, tmp_path: Path
) -> None:
    # Spot members' addresses are their load balancers': refused, nothing submitted.
    refused = client.patch(f"/v1/pools/{warm}/hosts", json={"refresh_ip": "all"})
    assert refused.status_code == 409 and "it runs on spot" in refused.json()["error"]["message"]
    (member,) = _members(client, warm)
    for target in (f"pools/{warm}", member["name"]):
        pending = client.get("/v1/executions", params={"target": target}).json()["executions"]
        assert pending == []

    template = {key: value for key, value in _template(tmp_path).items() if key != "spot"}
    name = _pool_name()
    created = client.post(
        "/v1/pools",
        json={"name": name, "capacity": {"target": 2, "maximum": 2}, "host": template},
    )
    assert created.status_code == 201, created.text
    before = {m["name"]: m["address"] for m in _converged(client, name, 2)}
    answer = client.patch(
        f"/v1/pools/{name}/hosts?wait=true&timeout=900",
        json={"refresh_ip": "all"},
        timeout=None,
    )
    assert answer.status_code == 200, answer.text
    execution = answer.json()["execution"]
    assert execution["name"] == "pools.refresh-ip" and execution["status"] == "succeeded", execution
    after = {m["name"]: m["address"] for m in _members(client, name)}
    assert sorted(execution["result"]["hosts"]) == sorted(before)
    # Every member got a new address (the simulated engine answers one constant
    # address per stack program, so the members' new addresses are alike here).
    for member, change in execution["result"]["results"].items():
        assert change["old_address"] == before[member]
        assert change["new_address"] == after[member] != before[member]

    # One member, by its address, through the CLI: only that one is changed.
    address = sorted(after.values())[0]
    cli = _mapt(shared_server, "pool", "refresh-ip", name, "--ip", address, "--output", "json")
    assert cli.exit_code == 0, cli.output
    done = json.loads(cli.stdout)["execution"]
    assert done["name"] == "pools.refresh-ip" and done["status"] == "succeeded", done
    assert len(done["result"]["hosts"]) == 1 and done["result"]["hosts"][0] in after
    unknown = client.patch(f"/v1/pools/{name}/hosts", json={"refresh_ip": "198.51.100.99"})
    assert unknown.status_code == 404, unknown.text


def test_an_expired_lease_is_reclaimed(client: httpx.Client, warm: str) -> None:
    short = _lease(client, warm, ttl="1s")
    assert short.status_code == 201, short.text
    lease = short.json()["lease"]

    def reclaimed() -> bool:
        client.post(f"/v1/test/pools/{warm}/converge")
        state = client.get(f"/v1/pools/{warm}/leases/{lease['id']}").json()["lease"]["state"]
        return bool(state == "expired")

    wait_for(reclaimed, timeout=30, interval=0.3)
    (member,) = _members(client, warm)
    assert member["name"] == lease["host"] and member["leased"] is False
    assert member["state"] == "RUNNING"  # "keep": back to idle
    late = client.delete(f"/v1/pools/{warm}/leases/{lease['id']}")
    assert late.status_code == 409 and "expired" in late.json()["error"]["message"]


def test_a_cold_start_is_leased_and_a_deleted_pool_drains_when_released(
    client: httpx.Client, tmp_path: Path
) -> None:
    name = _create(client, tmp_path, target=0, maximum=1, recycle="keep")
    empty = _lease(client, name)
    assert empty.status_code == 423, empty.text
    cold = _lease(client, name, allow_cold_start=True)
    assert cold.status_code == 202, cold.text
    lease = cold.json()["lease"]
    assert cold.json()["host"]["state"] == "PENDING" and "connection" not in cold.json()

    def started() -> dict[str, Any] | None:
        answer = client.get(f"/v1/pools/{name}/leases/{lease['id']}")
        return answer.json() if answer.status_code == 201 else None

    shown = wait_for(started, timeout=_SETTLE, interval=0.3)
    assert shown["connection"]["private_key"] == FAKE_PRIVATE_KEY_PEM
    served = metric_samples(client)
    assert served[("mapt_leases_served_total", (("pool", name), ("served", "cold_start")))] == 1
    assert ("mapt_leases_served_total", (("pool", name), ("served", "at_once"))) not in served
    assert served[("mapt_leases_active", (("pool", name),))] == 1
    # The loop does not take a leased member away, though it is above the target 0.
    assert client.post(f"/v1/test/pools/{name}/converge").json()["remove"] == []

    deleted = client.delete(f"/v1/pools/{name}")
    assert deleted.status_code == 202 and deleted.json()["pool"]["state"] == "DRAINING"
    assert client.put(f"/v1/pools/{name}/hosts").status_code == 409
    assert _lease(client, name).status_code == 409
    assert client.post(f"/v1/test/pools/{name}/converge").json()["remove"] == []
    released = client.delete(f"/v1/pools/{name}/leases/{lease['id']}")
    assert released.json()["execution"]["target"] == lease["host"]  # draining: destroyed

    def gone() -> bool:
        client.post(f"/v1/test/pools/{name}/converge")
        return client.get(f"/v1/pools/{name}").status_code == 404

    wait_for(gone, timeout=_SETTLE, interval=0.3)
    assert client.get(f"/v1/hosts/{lease['host']}").json()["host"]["state"] == "DELETED"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"capacity": {"target": 4, "minimum": 0, "maximum": 3}}, "capacity.target"),
        ({"capacity": {"target": 1, "minimum": 2, "maximum": 3}}, "capacity.target"),
        ({"capacity": {"target": "many"}}, "capacity.target"),
        ({"host": {"os": "beos"}}, "host: operating system 'beos'"),
        ({"host": {"os": "fedora", "name": "mine"}}, "host.name"),
        ({"host": {"os": "fedora", "ghactions_runner_token": "t0ken"}}, "ghactions_runner_token"),
        ({"strategy": {"recycle": "burn"}}, "strategy.recycle"),
        ({"strategy": {"max_lifetime": "forever"}}, "strategy.max_lifetime"),
        ({"name": "Bad_Name"}, "name"),
    ],
)
def test_bad_pools_are_422_naming_the_field_and_create_nothing(
    client: httpx.Client, tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    body = {
        "name": _pool_name(),
        "capacity": {"target": 1, "maximum": 2},
        "host": _template(tmp_path),
        **change,
    }
    answer = client.post("/v1/pools", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["exit_code"] == 2 and field in error["message"], error
    assert "t0ken" not in answer.text
    assert body["name"] not in {pool["name"] for pool in client.get("/v1/pools").json()["pools"]}


def test_two_leases_never_get_the_same_member(database_url: str, tmp_path: Path) -> None:
    """The unique index on active leases decides, on SQLite and PostgreSQL alike."""
    database = open_database(database_url)
    try:
        executions = Executions(database)
        pools = Pools(database, executions, Hosts(database, executions))
        pool = pools.create("race", Capacity(3, 0, 3), _template(tmp_path), Strategy())
        names = [f"race-{index}" for index in range(3)]
        for member in names:
            pools.hosts.request(
                HostRequest.CREATE, None, pool.member_fields(member),
                member={"pool": "race", "template": pool.template},
            )  # fmt: skip
        with database.transaction() as connection:
            connection.execute(hosts_table.update().values(state="RUNNING"))
        got: list[str | None] = []
        barrier = threading.Barrier(6)

        def take() -> None:
            barrier.wait()
            lease = pools.lease("race", ttl="5m", holder="job")
            got.append(None if lease is None else lease.host)

        threads = [threading.Thread(target=take) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        leased = [host for host in got if host is not None]
        assert sorted(leased) == names  # each member once, the other three got none
        assert got.count(None) == 3
    finally:
        database.dispose()


def test_a_lease_never_gets_a_member_past_the_pools_max_lifetime(
    database_url: str, tmp_path: Path
) -> None:
    """The oldest idle member is the first to pass ``max_lifetime``: a lease takes the
    next one, and the pass that follows removes the old one, which no one holds."""
    database = open_database(database_url)
    try:
        executions = Executions(database)
        pools = Pools(database, executions, Hosts(database, executions))
        strategy = Strategy(max_lifetime="12h", recycle="keep")
        pool = pools.create("aging", Capacity(2, 0, 2), _template(tmp_path), strategy)
        ages = {"aging-old": timedelta(hours=13), "aging-young": timedelta(hours=1)}
        for member in ages:
            pools.hosts.request(
                HostRequest.CREATE, None, pool.member_fields(member),
                member={"pool": "aging", "template": pool.template},
            )  # fmt: skip
        now = datetime.now(timezone.utc)
        with database.transaction() as connection:
            for member, age in ages.items():
                connection.execute(
                    hosts_table.update()
                    .where(hosts_table.c.name == member)
                    .values(state="RUNNING", created_at=now - age)
                )
        lease = pools.lease("aging", ttl="5m", holder="job")
        assert lease is not None and lease.host == "aging-young"
        assert pools.converge("aging").remove == (("aging-old", "past the pool's max_lifetime"),)
        # The young one leased, the old one going: nothing left to lease.
        assert pools.lease("aging", ttl="5m", holder="job") is None
    finally:
        database.dispose()


def test_the_host_routes_refuse_a_leased_member_as_the_pool_verbs_do(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DELETE``, ``PATCH`` and ``refresh-ip`` of ``/v1/hosts/NAME`` on a leased member
    are refused (409) as ``DELETE /v1/pools/NAME/hosts`` is, nothing submitted: its
    holder keeps the machine. Once the lease ends, the member may be deleted. (The app in
    this process without a dispatcher: executions stay queued.)"""
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))
    database = open_database(database_url)
    try:
        service = Service(database=database)
        template = {**_template(tmp_path), "spot": False}
        service.pools.create("held", Capacity(1, 0, 1), template, Strategy(recycle="keep"))
        service.pools.converge("held")
        [member] = service.pools.members("held")
        name = member.host.name
        record = {"outputs": {"spot": False, "host": "192.0.2.7", "username": "fedora"}}
        assert service.hosts.settle(
            name, HostState.RUNNING, execution_id=member.host.execution_id or "", record=record
        )
        lease = service.pools.lease("held", ttl="30m", holder="ci/run-42")
        assert lease is not None and lease.host == name
        with TestClient(create_app(service)) as api:
            api.headers["Authorization"] = f"Bearer {create_token(database, 'ci')[1]}"
            asked = {
                "removed": api.delete(f"/v1/hosts/{name}"),
                "changed": api.patch(f"/v1/hosts/{name}", json={"cpus": 4}),
                "given a new address": api.post(f"/v1/hosts/{name}/refresh-ip"),
                "removed by the pool": api.delete("/v1/pools/held/hosts", params={"host": name}),
            }
            for what, answer in asked.items():
                assert answer.status_code == 409, (what, answer.text)
                message = answer.json()["error"]["message"]
                assert message.startswith(f"host {name!r} is leased by 'ci/run-42' until "), what
                assert f"a leased member is never {what.removesuffix(' by the pool')}" in message
            assert service.hosts.get(name).state is HostState.RUNNING
            assert [e.name for e in service.executions.find(target=name)] == ["hosts.create"]
            assert api.delete(f"/v1/pools/held/leases/{lease.id}").status_code == 200
            assert api.delete(f"/v1/hosts/{name}").status_code == 202
    finally:
        database.dispose()


def test_the_loop_pins_launches_keeps_its_rate_and_routes_around_a_lost_zone(
    database_url: str, tmp_path: Path
) -> None:
    """The convergence pass itself, on the records: launches are pinned to the zones
    the newest allocation ranked, at most ``launches_per_minute`` a minute; a zone
    whose member broke gets no replacement while the others have room."""
    database = open_database(database_url)
    try:
        executions = Executions(database)
        pools = Pools(database, executions, Hosts(database, executions))
        pools.create("spread", Capacity(5, 0, 5), _template(tmp_path), Strategy())
        allocation = {  # a spot allocation (a price), as the spot template's members get
            "availability_zone": "us-east-1a",
            "spot_price": 0.03,
            "candidates": [
                {"availability_zone": "us-east-1b", "spot_price": 0.03},
                {"availability_zone": "us-east-1c", "spot_price": 0.03},
            ],
        }
        assert pools.converge("spread", launches_per_minute=3).launch == (None,)  # a scout
        with database.transaction() as connection:
            connection.execute(
                hosts_table.update().values(state="RUNNING", record={"allocation": allocation})
            )

        def pinned() -> dict[str, str | None]:
            return {
                m.host.name: m.host.fields.get("availability_zone") for m in pools.members("spread")
            }

        # The scout counts against the minute: two more, in the two other zones.
        assert pools.converge("spread", launches_per_minute=3).launch == (
            "us-east-1b",
            "us-east-1c",
        )
        assert sorted(map(str, pinned().values())) == ["None", "us-east-1b", "us-east-1c"]
        assert pools.converge("spread", launches_per_minute=3).launch == ()

        # Zone b loses its capacity: its member fails. It goes; its place is taken in
        # the zones that still run members, and theirs stay.
        lost = next(name for name, zone in pinned().items() if zone == "us-east-1b")
        with database.transaction() as connection:
            connection.execute(
                hosts_table.update().where(hosts_table.c.name == lost).values(state="ERROR")
            )
        decided = pools.converge("spread", launches_per_minute=10)
        assert decided.remove == ((lost, "in ERROR"),)
        assert sorted(decided.launch) == ["us-east-1a", "us-east-1a", "us-east-1c"]
        assert [zone for name, zone in pinned().items() if name != lost].count("us-east-1b") == 0
    finally:
        database.dispose()


@on_sqlite_only()
def test_fallback_on_demand_reaches_every_spot_member(database_url: str, tmp_path: Path) -> None:
    database = open_database(database_url)
    try:
        executions = Executions(database)
        pools = Pools(database, executions, Hosts(database, executions))
        pools.create(
            "od", Capacity(1, 0, 1), _template(tmp_path), Strategy(fallback_on_demand=True)
        )
        pools.converge("od")
        [member] = pools.members("od")
        assert member.host.fields["spot"] is True
        assert member.host.fields["spot_fallback_on_demand"] is True
    finally:
        database.dispose()


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_pool_operation_stopped_in_one_member_stops_there(
    database_url: str, tmp_path: Path, signal_number: int
) -> None:
    """A cancel or a server's stop reaches ``pools.add`` as ``Interrupted`` in the member
    being made: the others are not made after it, and the execution is stopped (cancelled,
    or handed back to resume), not failed as if each member had failed."""
    from mapt.core import Interrupted
    from mapt.service import ExecutionContext
    from mapt.service._pools import run_add

    database = open_database(database_url)
    try:
        executions = Executions(database)
        pools = Pools(database, executions, Hosts(database, executions))
        pool = pools.create("halt", Capacity(2, 0, 2), _template(tmp_path), Strategy())
        members = ["halt-a", "halt-b"]
        with database.transaction() as connection:
            execution_id = executions.submit_in(
                connection, "pools.add", "pools/halt", {"members": members}
            )
            for member in members:
                pools.hosts.request_in(
                    connection, HostRequest.CREATE, None, pool.member_fields(member),
                    member={"pool": "halt", "template": pool.template}, execution_id=execution_id,
                )  # fmt: skip
        created: list[str] = []

        def stopped_create(context: ExecutionContext) -> None:
            created.append(context.target)
            raise Interrupted.for_signal(signal_number)

        context = ExecutionContext(
            execution_id, "pools.add", "pools/halt", {"members": members}, 1, None, database
        )
        with pytest.raises(Interrupted):
            run_add(context, stopped_create)
        assert created == ["halt-a"]
    finally:
        database.dispose()
