"""A host operation its worker hands back (its server stops or died) leaves the host for
the next attempt; a cancelled one settles it as a failure does; an operation settles only
a host that is still its own. On the records alone: the operations run in the test's
process on an engine that raises what the worker's stop raises in a Pulumi command, or
AWS's refusal (no server, no AWS)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mapt.core import Interrupted, MaptError, OperationError, register_secret
from mapt.service import Database, ExecutionContext, open_database
from mapt.service._executions import ExecutionError, Executions
from mapt.service._hosts import Hosts, run_delete, run_recover, run_refresh_ip
from mapt.service._schema import hosts
from mapt.service._states import HostRequest
from mapt.stacks import InMemoryEngine, StackRef

NOW = datetime.now(timezone.utc).replace(microsecond=0)


class StoppedEngine(InMemoryEngine):
    """An engine whose worker was told to stop: its first call on state raises the
    ``Terminated`` the worker's SIGTERM raises in a running Pulumi command."""

    def _stop(self, *_: Any, **__: Any) -> Any:
        raise Interrupted.for_signal(signal.SIGTERM)

    def exists(self, ref: StackRef) -> bool:
        return bool(self._stop())

    def outputs(self, ref: StackRef) -> dict[str, Any]:
        return dict(self._stop())

    def list_stacks(self, backend_url: str | None) -> Any:
        return self._stop()

    def up(self, ref: StackRef, program: Any, **options: Any) -> dict[str, Any]:
        return dict(self._stop())

    def destroy(self, ref: StackRef) -> bool:
        return bool(self._stop())


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    # A recover's create path reads the credentials' presence before its first engine call.
    for variable, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(variable, value)
    opened = open_database(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    yield opened
    opened.dispose()


def _running_host(database: Database, tmp_path: Path, name: str) -> Hosts:
    """Host ``name`` as a create leaves it: RUNNING, on demand, with its own address."""
    fields = {
        "name": name, "os": "fedora", "spot": False, "cpus": 2, "memory": 8,
        "backed_url": f"file://{tmp_path / 'state'}",
    }  # fmt: skip
    record = {"outputs": {"spot": False, "host": "203.0.113.7", "username": "fedora"}}
    with database.transaction() as connection:
        connection.execute(
            hosts.insert().values(
                name=name, state="RUNNING", fields=fields, record=record, execution_id=None,
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
    return Hosts(database, Executions(database))


class RefusedEngine(InMemoryEngine):
    """An engine whose first call on state runs ``meanwhile`` (what a person does while
    the operation runs), then every call raises ``refusal`` (AWS refusing the launch)."""

    def __init__(self, refusal: MaptError, meanwhile: Callable[[], Any] = lambda: None) -> None:
        super().__init__()
        self._refusal = refusal
        self._meanwhile: list[Callable[[], Any]] = [meanwhile]

    def _refuse(self, *_: Any, **__: Any) -> Any:
        while self._meanwhile:
            self._meanwhile.pop()()
        raise self._refusal

    def exists(self, ref: StackRef) -> bool:
        return bool(self._refuse())

    def outputs(self, ref: StackRef) -> dict[str, Any]:
        return dict(self._refuse())

    def list_stacks(self, backend_url: str | None) -> Any:
        return self._refuse()

    def up(self, ref: StackRef, program: Any, **options: Any) -> dict[str, Any]:
        return dict(self._refuse())


def _context(database: Database, execution_id: str, engine: InMemoryEngine) -> ExecutionContext:
    """Execution ``execution_id`` as its worker runs it, on ``engine``."""
    from mapt.hosts import HostServices

    execution = Executions(database).get(execution_id)
    return ExecutionContext(
        execution_id=execution_id,
        name=execution.name,
        target=execution.target,
        arguments=execution.arguments,
        attempt=1,
        services=HostServices(engine=lambda secrets_provider, debug: engine),
        database=database,
    )


def _recovering(store: Hosts, name: str) -> str:
    submitted = store.detect_failure(name, "its instance is terminated", 3)
    assert submitted is not None
    return submitted


# Each operation, and how its execution is admitted on a RUNNING host.
OPERATIONS: dict[str, tuple[Callable[[ExecutionContext], Any], Callable[[Hosts, str], str]]] = {
    "hosts.recover": (run_recover, _recovering),
    "hosts.refresh-ip": (run_refresh_ip, lambda s, n: s.request(HostRequest.REFRESH_IP, n)),
    "hosts.delete": (run_delete, lambda s, n: s.request(HostRequest.DELETE, n)),
}


def _row(database: Database, name: str) -> dict[str, Any]:
    with database.transaction() as connection:
        row = connection.execute(sa.select(hosts).where(hosts.c.name == name)).one()
    keys = ("state", "error_type", "error_message", "error_exit_code", "execution_id")
    return {key: row._mapping[key] for key in keys}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_an_operation_handed_back_leaves_its_host_and_a_cancelled_one_settles_it_error(
    database: Database, tmp_path: Path, operation: str
) -> None:
    run, admitted = OPERATIONS[operation]
    store = _running_host(database, tmp_path, "pr-1")
    execution_id = admitted(store, "pr-1")
    context = _context(database, execution_id, StoppedEngine())
    before = _row(database, "pr-1")

    # Its server stopped: the stop passes through, and the host waits for the next attempt.
    with pytest.raises(Interrupted):
        run(context)
    assert _row(database, "pr-1") == before

    # Cancelled: the stop fails the operation, and the host says so, as a failure would.
    store.executions.cancel(execution_id)
    with pytest.raises(Interrupted):
        run(context)
    after = _row(database, "pr-1")
    assert (after["state"], after["error_type"], after["execution_id"]) == (
        "ERROR",
        "Terminated",
        execution_id,
    )
    assert after["error_message"].endswith("interrupted by SIGTERM")
    if operation == "hosts.recover":
        assert after["error_message"] == (
            "its instance is terminated; recovery attempt 1 of 3 failed: interrupted by SIGTERM"
        )


def test_a_delete_admitted_while_a_recovery_runs_is_left_to_the_delete(
    database: Database, tmp_path: Path
) -> None:
    """ERROR is no busy state: a delete is admitted while the host's recovery runs. The
    recovery's failure leaves the host to the delete, whose destroy then ends it DELETED
    (the recovery's settle overwrote the delete, and the delete's own then failed)."""
    store = _running_host(database, tmp_path, "pr-1")
    recovery = _recovering(store, "pr-1")
    deletes: list[str] = []
    engine = RefusedEngine(
        OperationError("no spot capacity for m5.large in us-east-1a"),
        meanwhile=lambda: deletes.append(store.request(HostRequest.DELETE, "pr-1")),
    )

    with pytest.raises(OperationError):
        run_recover(_context(database, recovery, engine))
    [delete] = deletes
    assert _row(database, "pr-1") == {
        "state": "DELETING", "error_type": "HostFailure",
        "error_message": "its instance is terminated", "error_exit_code": 1,
        "execution_id": delete,
    }  # fmt: skip

    result = run_delete(_context(database, delete, InMemoryEngine()))
    assert result["nothing_to_destroy"] is True
    assert _row(database, "pr-1")["state"] == "DELETED"


def test_a_failure_whose_message_carries_a_secret_is_stored_and_logged_masked(
    database: Database, tmp_path: Path
) -> None:
    """A domain error (here AWS's refusal, quoting a token it was handed) is stored as the
    execution's error, its log's last line and the host's ``last_error``, masked as any
    other error is: the worker records it with ``ExecutionError.of_any``, as here."""
    register_secret("ghp_r3fus3dt0ken")
    store = _running_host(database, tmp_path, "pr-1")
    recovery = _recovering(store, "pr-1")
    claimed = store.executions.claim("server-a", ["hosts.recover"])
    assert claimed is not None and claimed.id == recovery
    refusal = OperationError("AWS refused the launch template holding ghp_r3fus3dt0ken")

    with pytest.raises(OperationError) as raised:
        run_recover(_context(database, recovery, RefusedEngine(refusal)))
    assert store.executions.fail(recovery, claimed.claim or "", ExecutionError.of_any(raised.value))

    masked = "AWS refused the launch template holding ***"
    error = store.executions.get(recovery).error
    assert error is not None and (error.type, error.message) == ("OperationError", masked)
    assert store.executions.log(recovery)[-1].message == f"failed: {masked}"
    assert _row(database, "pr-1")["error_message"] == (
        f"its instance is terminated; recovery attempt 1 of 3 failed: {masked}"
    )
