"""A host whose execution ends without its operation having settled it is moved on, never
left busy (PENDING, UPDATING, DELETING: every request 423) for ever.

The app runs in this process without a dispatcher, so a submitted execution stays
pending until the test cancels it; a lost worker is played on the records (a claim
whose heartbeat is at once older than a lease of 0, ``MAX_ATTEMPTS`` times), and the
reconciler's pass is called directly (the dispatcher's own call is in
``test_executions.py``, with a worker process it kills).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mapt.pools import Capacity
from mapt.service import create_token, open_database
from mapt.service._app import Service, create_app
from mapt.service._executions import MAX_ATTEMPTS, Executions
from mapt.service._leader import LeaderContext
from mapt.service._pools import Strategy
from mapt.service._reconciler import RecoveryPolicy, reconcile
from mapt.service._states import HostRequest, HostState

HOST = {"os": "fedora", "spot": True, "cpus": 2, "memory": 8}


@pytest.fixture
def service(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Service]:
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))
    database = open_database(database_url)
    yield Service(database=database)
    database.dispose()


@pytest.fixture
def api(service: Service) -> Iterator[TestClient]:
    token = create_token(service.database, "writer")[1]
    with TestClient(create_app(service)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _host(api: TestClient, name: str) -> dict[str, Any]:
    answer = api.get(f"/v1/hosts/{name}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["host"])


def _cancelled(api: TestClient, answer: Any) -> dict[str, Any]:
    """Cancel the (pending) execution ``answer`` submitted; the execution then."""
    assert answer.status_code == 202, answer.text
    execution_id = answer.json()["execution"]["id"]
    cancelled = api.post(f"/v1/executions/{execution_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    execution: dict[str, Any] = cancelled.json()["execution"]
    assert (execution["status"], execution["attempts"]) == ("cancelled", 0)
    return execution


def _running(service: Service, name: str) -> None:
    """Host ``name`` as a create that ran leaves it: RUNNING, its create succeeded."""
    service.hosts.request(HostRequest.CREATE, None, {**HOST, "name": name})
    claimed = service.executions.claim("server-a", ["hosts.create"])
    assert claimed is not None and claimed.target == name
    service.hosts.settle(
        name, HostState.RUNNING, execution_id=claimed.id, record={"outputs": {"host": "192.0.2.7"}}
    )
    assert service.executions.succeed(claimed.id, claimed.claim or "", {})


def _lose_every_worker(executions: Executions, execution_id: str) -> None:
    """Claim ``execution_id`` and lose its worker until it fails (``MAX_ATTEMPTS``)."""
    for _ in range(MAX_ATTEMPTS):
        claimed = executions.claim("server-a", [executions.get(execution_id).name])
        assert claimed is not None and claimed.id == execution_id
        executions.recover(lease=timedelta(0), resumable=[claimed.name])
    assert executions.get(execution_id).status.value == "failed"


def _reconciled(service: Service) -> list[str]:
    """One reconciler pass; ``["woken"]`` when it asked the dispatcher to look for work."""
    woken: list[str] = []
    context = LeaderContext(
        database=service.database,
        services=None,
        server_id="server-a",
        leading=lambda: True,
        submitted=lambda: woken.append("woken"),
    )
    reconcile(context, policy=RecoveryPolicy())
    return woken


def test_a_create_cancelled_before_it_started_ends_deleted_and_its_name_is_free(
    api: TestClient,
) -> None:
    execution = _cancelled(api, api.post("/v1/hosts", json={**HOST, "name": "pr-1"}))
    host = _host(api, "pr-1")
    assert host["state"] == "DELETED" and host["deleted_at"] is not None
    assert host["last_error"] == {
        "type": "Cancelled",
        "message": f"its hosts.create {execution['id']} was cancelled before it started",
        "exit_code": 130,
    }
    again = api.post("/v1/hosts", json={**HOST, "name": "pr-1"})
    assert again.status_code == 202, again.text
    assert _host(api, "pr-1")["state"] == "PENDING"


def test_an_update_cancelled_before_it_started_leaves_the_host_running_and_a_delete_error(
    api: TestClient, service: Service
) -> None:
    _running(service, "pr-2")
    _cancelled(api, api.patch("/v1/hosts/pr-2", json={"cpus": 4}))
    assert _host(api, "pr-2")["state"] == "RUNNING"
    assert _host(api, "pr-2")["fields"]["cpus"] == 2  # nothing changed

    execution = _cancelled(api, api.delete("/v1/hosts/pr-2"))
    host = _host(api, "pr-2")
    assert host["state"] == "ERROR", host
    assert host["last_error"]["message"] == (
        f"its hosts.delete {execution['id']} was cancelled before it started"
    )
    assert api.delete("/v1/hosts/pr-2").status_code == 202  # delete again


def test_a_pool_add_cancelled_before_it_started_deletes_the_members_it_would_make(
    api: TestClient, service: Service
) -> None:
    service.pools.create("web", Capacity(0, 0, 3), HOST, Strategy())
    _cancelled(api, api.put("/v1/pools/web/hosts?count=2"))
    assert service.pools.members("web") == []
    members = service.hosts.find(include_deleted=True)
    assert len(members) == 2 and {member.state for member in members} == {HostState.DELETED}


def test_a_create_whose_workers_were_lost_is_destroyed_once_by_the_reconcilers_pass(
    service: Service,
) -> None:
    """The dispatcher settles such a host as it fails the execution; a server that died
    between the two left it PENDING, which the reconciler's next pass settles."""
    created = service.hosts.request(HostRequest.CREATE, None, {**HOST, "name": "pr-3"})
    _lose_every_worker(service.executions, created)
    assert service.hosts.get("pr-3").state is HostState.PENDING  # what the defect left

    assert _reconciled(service) == ["woken"]
    host = service.hosts.get("pr-3")
    assert host.state is HostState.DELETING
    assert host.error is not None and host.error.message == (
        f"its worker stopped sending heartbeats, after {MAX_ATTEMPTS} attempts"
    )
    [cleanup] = service.executions.find(target="pr-3")
    assert (cleanup.id, cleanup.name) == (host.execution_id, "hosts.delete")
    assert cleanup.arguments["fields"]["name"] == "pr-3"

    assert _reconciled(service) == []  # settled once: its cleanup is at work now
    assert service.executions.find(target="pr-3") == [cleanup]


def test_an_update_whose_workers_were_lost_ends_error_keeping_the_reason(
    service: Service,
) -> None:
    _running(service, "pr-4")
    updated = service.hosts.request(HostRequest.UPDATE, "pr-4", {"cpus": 4})
    _lose_every_worker(service.executions, updated)
    _reconciled(service)
    host = service.hosts.get("pr-4")
    assert host.state is HostState.ERROR
    assert host.error is not None and host.error.message.startswith(
        "its worker stopped sending heartbeats"
    )
    assert service.hosts.request(HostRequest.DELETE, "pr-4")  # no longer 423
