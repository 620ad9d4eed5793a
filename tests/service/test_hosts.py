"""Hosts over HTTP: the lifecycle of ``mapt aws host`` as records with states, on a real
server whose workers run it on simulated AWS and the in-memory engine."""

from __future__ import annotations

import itertools
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mapt.service import open_database
from mapt.service._executions import Executions
from mapt.service._hosts import Hosts
from mapt.service._schema import host_intervals
from mapt.service._states import TRANSITIONS, HostState
from tests.cli.host_harness import FAMILIES
from tests.harness.postgres import on_sqlite_only
from tests.harness.pulumi_mocks import FAKE_PRIVATE_KEY_PEM
from tests.harness.service import ServerProcess, make_token, running, wait_for
from tests.harness.service_hosts import HOLD_HOST_UP, FileBackedEngine, hold_host_up


def _fields(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "pr-123",
        "os": "fedora",
        "spot": True,
        "cpus": 2,
        "memory": 8,
        "compute_families": FAMILIES,
        "backed_url": f"file://{tmp_path / 'state'}",
        **extra,
    }


def _host(client: httpx.Client, name: str = "pr-123") -> dict[str, Any]:
    answer = client.get(f"/v1/hosts/{name}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["host"])


def _finished(client: httpx.Client, identifier: str) -> dict[str, Any]:
    """Execution ``identifier`` once it has ended (a deployment: up to 180 s)."""
    return dict(
        wait_for(
            lambda: (
                (e := client.get(f"/v1/executions/{identifier}").json()["execution"])["finished_at"]
                and e
            ),
            timeout=180,
        )
    )


def _states_seen(client: httpx.Client, name: str, until: set[str]) -> list[str]:
    """The states the host shows while polled, until one of ``until``."""
    seen: list[str] = []

    def settled() -> bool:
        state = _host(client, name)["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return state in until

    wait_for(settled, timeout=180)
    return seen


def _moves(states: list[str]) -> set[tuple[HostState, HostState]]:
    return {(HostState(a), HostState(b)) for a, b in itertools.pairwise(states)}


def _intervals(server: ServerProcess, host: str) -> list[dict[str, Any]]:
    """The rows of ``host``'s intervals in the server's database (other tests' hosts have
    other names)."""
    database = open_database(server.database_url)
    try:
        with database.transaction() as connection:
            found = connection.execute(
                sa.select(host_intervals).where(host_intervals.c.host == host)
            )
            return [dict(row._mapping) for row in found]
    finally:
        database.dispose()


def test_create_then_delete_walks_the_state_machine_and_closes_the_hosts_interval(
    shared_client: httpx.Client, shared_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    """A host goes PENDING, RUNNING, DELETING, DELETED; the create, run by a worker, also
    opened its interval at the place it was deployed, and the delete ended it (the
    intervals ``/costs`` prices)."""
    created = shared_client.post("/v1/hosts", json=_fields(tmp_path, name=unique, timeout="2h"))
    assert created.status_code == 202, created.text
    execution = created.json()["execution"]
    assert execution["name"] == "hosts.create" and execution["target"] == unique
    assert created.headers["location"] == f"/v1/executions/{execution['id']}"
    # While the create runs, the host is PENDING and refuses changes (423).
    locked = shared_client.delete(f"/v1/hosts/{unique}")
    assert locked.status_code == 423, locked.text
    assert locked.json()["error"]["exit_code"] == 3
    duplicate = shared_client.post("/v1/hosts", json=_fields(tmp_path, name=unique))
    assert duplicate.status_code == 423
    states = ["PENDING", *_states_seen(shared_client, unique, {"RUNNING", "DELETED"})][1:]
    host = _host(shared_client, unique)
    assert host["state"] == "RUNNING", (states, host, shared_server.text()[-3000:])
    assert host["address"] and host["username"] == "fedora"
    assert host["allocation"]["region"] and host["expires_at"] is not None
    assert host["execution_id"] == execution["id"]
    allocation = host["allocation"]
    stacks = FileBackedEngine(shared_server.engine_file).stored_stacks()
    assert {f"host-{unique}", f"spotOption-{unique}"} <= set(stacks)
    # A create of a host that runs is impossible (409), not locked.
    again = shared_client.post("/v1/hosts", json=_fields(tmp_path, name=unique))
    assert again.status_code == 409
    # Other tests' hosts share this server: the list shows this one once.
    listed = shared_client.get("/v1/hosts").json()["hosts"]
    assert [h["name"] for h in listed if h["name"] == unique] == [unique]

    deleted = shared_client.delete(f"/v1/hosts/{unique}?wait=true&timeout=180")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["execution"]["status"] == "succeeded", deleted.json()["execution"][
        "error"
    ]
    assert _host(shared_client, unique)["state"] == "DELETED"
    remaining = FileBackedEngine(shared_server.engine_file).stored_stacks()
    assert [stack for stack in remaining if stack.endswith(f"-{unique}")] == []
    assert unique not in [h["name"] for h in shared_client.get("/v1/hosts").json()["hosts"]]
    every = shared_client.get("/v1/hosts", params={"include_deleted": "true"}).json()["hosts"]
    assert [h["state"] for h in every if h["name"] == unique] == ["DELETED"]
    gone = shared_client.delete(f"/v1/hosts/{unique}")
    assert gone.status_code == 409
    assert _moves(["PENDING", "RUNNING", "DELETING", "DELETED"]) <= TRANSITIONS
    (row,) = _intervals(shared_server, unique)
    assert (row["start_reason"], row["end_reason"]) == ("created", "deleted")
    assert (row["region"], row["availability_zone"]) == (
        allocation["region"],
        allocation["availability_zone"],
    )
    assert row["instance_types"] == allocation["instance_types"]
    assert (row["spot"], row["product"], row["airgap"]) == (True, "Linux/UNIX", False)
    assert row["started_at"] < row["ended_at"]


@on_sqlite_only("shared_database_url")
def test_a_create_that_fails_ends_deleted_and_keeps_its_error(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    answer = shared_client.post(
        "/v1/hosts?wait=true&timeout=180", json=_fields(tmp_path, name=unique, cpus=448)
    )
    execution = answer.json()["execution"]
    assert execution["status"] == "failed"
    # The market has no such machine: the CLI's error and exit code, kept by the host.
    assert execution["error"]["type"] == "NoMatchingInstanceTypesError", execution["error"]
    assert execution["error"]["exit_code"] == 2
    host = _host(shared_client, unique)
    assert host["state"] == "DELETED"
    assert host["last_error"] == execution["error"]
    # A deleted host's name can be created again.
    again = shared_client.post("/v1/hosts", json=_fields(tmp_path, name=unique))
    assert again.status_code == 202


@on_sqlite_only("shared_database_url")
def test_resize_replaces_the_machine_and_returns_to_running(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    created = shared_client.post(
        "/v1/hosts?wait=true&timeout=180", json=_fields(tmp_path, name=unique)
    )
    assert created.json()["execution"]["status"] == "succeeded", created.text
    small = _host(shared_client, unique)["allocation"]["instance_types"]
    resized = shared_client.patch(f"/v1/hosts/{unique}", json={"cpus": 8, "memory": 32})
    assert resized.status_code == 202
    assert resized.json()["execution"]["name"] == "hosts.update"
    assert _host(shared_client, unique)["state"] == "UPDATING"
    locked = shared_client.patch(f"/v1/hosts/{unique}", json={"cpus": 4})
    assert locked.status_code == 423
    wait_for(lambda: _host(shared_client, unique)["state"] != "UPDATING", timeout=180)
    host = _host(shared_client, unique)
    assert host["state"] == "RUNNING", host
    assert set(host["allocation"]["instance_types"]).isdisjoint(small)
    assert host["fields"]["cpus"] == 8


@on_sqlite_only("shared_database_url")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"os": "fedora", "name": "x", "cpus": "many"}, "cpus"),
        ({"os": "beos", "name": "x"}, "os"),
        ({"os": "fedora", "name": "x", "colour": "red"}, "colour"),
        (
            {"os": "fedora", "name": "x", "ghactions_runner_token": "t0ken"},
            "ghactions_runner_token",
        ),
    ],
)
def test_bad_fields_are_422_naming_the_field_and_create_nothing(
    shared_client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    answer = shared_client.post("/v1/hosts", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["exit_code"] == 2 and field in error["message"]
    assert "t0ken" not in answer.text
    # No record of the host, and nothing started (earlier tests left nothing active).
    assert shared_client.get(f"/v1/hosts/{body['name']}").status_code == 404
    assert shared_client.get("/v1/executions").json()["executions"] == []


@on_sqlite_only("shared_database_url")
def test_a_runner_without_github_credentials_on_the_server_is_409_and_creates_nothing(
    shared_client: httpx.Client, unique: str
) -> None:
    body = {"os": "fedora", "name": unique, "ghactions_runner_repo": "acme/app"}
    answer = shared_client.post("/v1/hosts", json=body)
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["message"].startswith(
        "ghactions_runner_repo 'acme/app': this server has no GitHub credentials to "
        "register runners with. Start mapt serve with GITHUB_TOKEN"
    )
    assert "\n" not in error["message"]
    # The App is the server's too: a host cannot name one.
    app = shared_client.post("/v1/hosts", json={**body, "ghactions_app_id": "12"})
    assert app.status_code == 422
    assert app.json()["error"]["message"].startswith("ghactions_app_id is not accepted")
    assert shared_client.get(f"/v1/hosts/{unique}").status_code == 404
    assert shared_client.get("/v1/executions").json()["executions"] == []


def test_a_runner_is_registered_with_the_servers_own_credentials_kept_out_of_its_records(
    tmp_path: Path,
) -> None:
    from tests.integrations.fake_github import REGISTRATION_TOKEN, FakeGitHub, FakeGitHubServer

    access_token = "ghp_" + "s" * 36
    github = FakeGitHub()
    github.tokens.add(access_token)
    github.add_scope("/repos/acme/app")
    database = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    with FakeGitHubServer(github) as api:
        env = {"GITHUB_TOKEN": access_token, "GITHUB_API_URL": api.api_url}
        server = ServerProcess(database, tmp_path / "server.log", env=env)
        with running(server), server.client(make_token(database, "ci")) as client:
            fields = _fields(tmp_path, ghactions_runner_repo="acme/app",
                             ghactions_runner_labels="gpu")  # fmt: skip
            created = client.post("/v1/hosts?wait=true&timeout=180", json=fields)
            assert created.json()["execution"]["status"] == "succeeded", created.text
            host = _host(client)
            records = created.text + client.get("/v1/hosts/pr-123").text
            records += client.get("/v1/executions").text
    (minted,) = [r for r in github.requests if r.method == "POST"]
    assert minted.path == "/repos/acme/app/actions/runners/registration-token"
    assert minted.headers["authorization"] == f"Bearer {access_token}"
    assert host["state"] == "RUNNING" and host["fields"]["ghactions_runner_repo"] == "acme/app"
    # Neither the server's token nor the registration token is in a record or its log.
    logged = (tmp_path / "server.log").read_text()
    for secret in (access_token, REGISTRATION_TOKEN):
        assert secret not in records and secret not in logged
        for stored in tmp_path.glob("service.sqlite3*"):  # the database and its journal
            assert secret.encode() not in stored.read_bytes()


@on_sqlite_only("shared_database_url")
def test_patch_takes_only_what_a_resize_changes(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    unknown = shared_client.patch(f"/v1/hosts/nobody-{unique}", json={"cpus": 4})
    assert unknown.status_code == 404
    created = shared_client.post(
        "/v1/hosts?wait=true&timeout=180", json=_fields(tmp_path, name=unique)
    )
    assert created.json()["execution"]["status"] == "succeeded", created.text
    refused = shared_client.patch(f"/v1/hosts/{unique}", json={"os": "rhel"})
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith("os cannot be changed on a host")
    assert _host(shared_client, unique)["state"] == "RUNNING"


@on_sqlite_only("shared_database_url")
def test_status_and_connection_of_a_running_host(
    shared_client: httpx.Client, shared_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    early = shared_client.get(f"/v1/hosts/{unique}/connection")
    assert early.status_code == 404
    created = shared_client.post(
        "/v1/hosts?wait=true&timeout=180", json=_fields(tmp_path, name=unique)
    )
    assert created.json()["execution"]["status"] == "succeeded", created.text
    status = shared_client.get(f"/v1/hosts/{unique}/status").json()
    assert status["host"]["state"] == "RUNNING"
    assert set(status["status"]["stacks"]) >= {f"host-{unique}", f"spotOption-{unique}"}
    assert status["status"]["host"] == status["host"]["address"]

    reader = make_token(shared_server.database_url, f"dashboard-{unique}", read_only=True)
    with shared_server.client(reader) as read_only:
        assert read_only.get(f"/v1/hosts/{unique}").status_code == 200
        assert read_only.get(f"/v1/hosts/{unique}/connection").status_code == 403
    answer = shared_client.get(f"/v1/hosts/{unique}/connection")
    assert answer.status_code == 200, answer.text
    connection = answer.json()["connection"]
    assert connection["address"] == status["host"]["address"]
    assert connection["username"] == "fedora"
    assert connection["private_key"] == FAKE_PRIVATE_KEY_PEM
    audit = [e["audit"] for e in shared_server.log() if e.get("audit", {}).get("host") == unique]
    assert audit == [{"host": unique, "token": "ci", "read": "connection"}]
    assert "PRIVATE KEY" not in shared_server.text()


def test_sigkill_during_a_create_then_restart_ends_running_once(
    database_url: str, tmp_path: Path
) -> None:
    # The create holds before its host stack's ``up`` (its spot allocation stack is up)
    # until the release file exists: the kill lands mid-create, however fast it runs.
    server = ServerProcess(
        database_url, tmp_path / "server.log", env={HOLD_HOST_UP: str(tmp_path / "holds")}
    )
    held, release = hold_host_up(server, "pr-123")
    token = make_token(server.database_url, "ci")
    # ``running`` kills the first server's group (its worker) only at the end: the
    # worker must learn of its server's death by itself.
    with running(server):
        with server.client(token) as client:
            created = client.post("/v1/hosts", json=_fields(tmp_path))
            identifier = created.json()["execution"]["id"]
            wait_for(held.exists, timeout=180)
        server.signal(signal.SIGKILL)
        server.wait()
        # No server runs: only the worker itself, told by its lifeline, hands it back
        # (before the release, so it cannot go on to finish the create). Handed back,
        # not cancelled: the host and the spot choice the attempt made wait for the next.
        database = open_database(server.database_url, migrate=False)
        try:
            executions = Executions(database)
            wait_for(lambda: executions.get(identifier).status == "pending", timeout=60)
            assert Hosts(database, executions).get("pr-123").state is HostState.PENDING
        finally:
            database.dispose()
        assert FileBackedEngine(server.engine_file).stored_stacks() == ["spotOption-pr-123"]
        release.touch()
        again = ServerProcess(
            server.database_url, server.log_path.with_name("restarted.log"), timing=server.timing
        )
        with running(again), again.client(token) as client:
            execution = _finished(client, identifier)
            host = _host(client)
    assert host["state"] == "RUNNING", host
    assert execution["status"] == "succeeded" and execution["attempts"] == 2, execution
    stacks = FileBackedEngine(server.engine_file).stored_stacks()
    assert sorted(stacks) == ["host-pr-123", "spotOption-pr-123"]


def test_a_create_cancelled_midway_destroys_what_it_made(
    shared_client: httpx.Client, shared_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    """A cancel is not a hand-back: the create stops and destroys its spot choice, the
    host ends DELETED (it is never released to run again)."""
    held, _never_released = hold_host_up(shared_server, unique)
    created = shared_client.post("/v1/hosts", json=_fields(tmp_path, name=unique))
    identifier = created.json()["execution"]["id"]
    wait_for(held.exists, timeout=180)
    assert shared_client.post(f"/v1/executions/{identifier}/cancel").status_code == 202
    execution = _finished(shared_client, identifier)
    host = _host(shared_client, unique)
    assert (execution["status"], execution["attempts"]) == ("cancelled", 1), execution
    assert host["state"] == "DELETED", host
    stacks = FileBackedEngine(shared_server.engine_file).stored_stacks()
    assert [stack for stack in stacks if stack.endswith(f"-{unique}")] == []


@on_sqlite_only("shared_database_url")
def test_refresh_ip_gives_an_on_demand_host_a_new_address_and_refuses_a_spot_host(
    shared_client: httpx.Client, shared_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    client, spot_name = shared_client, f"{unique}-spot"
    on_demand = _fields(tmp_path, name=unique, timeout="2h")
    del on_demand["spot"]
    spot = _fields(tmp_path, name=spot_name)
    for fields in (on_demand, spot):
        created = client.post("/v1/hosts?wait=true&timeout=180", json=fields, timeout=240)
        assert created.json()["execution"]["status"] == "succeeded", created.text
    before = _host(client, unique)
    assert client.post("/v1/hosts/nobody/refresh-ip").status_code == 404

    # A spot host's address is its load balancer's: refused, nothing submitted.
    refused = client.post(f"/v1/hosts/{spot_name}/refresh-ip")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["message"].startswith(
        f"host '{spot_name}' cannot get a new address: it runs on spot"
    )
    assert _host(client, spot_name)["state"] == "RUNNING"
    assert client.get("/v1/executions", params={"target": spot_name}).json()["executions"] == []

    answer = client.post(f"/v1/hosts/{unique}/refresh-ip?wait=true&timeout=180", timeout=240)
    assert answer.status_code == 200, answer.text
    execution = answer.json()["execution"]
    assert execution["name"] == "hosts.refresh-ip" and execution["status"] == "succeeded", (
        execution,
        shared_server.text()[-3000:],
    )
    result = execution["result"]
    assert result["old_address"] == before["address"]
    assert result["new_address"] not in (None, before["address"])
    after = _host(client, unique)
    assert after["state"] == "RUNNING" and after["address"] == result["new_address"]
    assert after["expires_at"] == before["expires_at"]  # a new address, not a new lifetime
    connection = client.get(f"/v1/hosts/{unique}/connection").json()["connection"]
    assert connection["address"] == result["new_address"]
