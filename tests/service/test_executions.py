"""Executions over HTTP on a real server: 202 and wait, outcomes, cancel, logs, order,
worker processes, and crashes that lose nothing and run nothing twice."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import httpx
import psutil
import pytest

from mapt.service import open_database
from mapt.service._executions import Executions
from mapt.service._hosts import Hosts
from mapt.service._schema import hosts
from mapt.service._states import HostState
from tests.harness import service_operations
from tests.harness.postgres import needs_postgres, on_sqlite_only
from tests.harness.service import ServerProcess, make_token, running, wait_for
from tests.harness.service_operations import journal


def _submit(
    client: httpx.Client, name: str, target: str, query: str = "", **arguments: Any
) -> httpx.Response:
    body = {"name": name, "target": target, "arguments": arguments}
    return client.post(f"/v1/test/executions{query}", json=body)


def _execution(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/executions/{execution_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["execution"])


def _finished(client: httpx.Client, execution_id: str, timeout: float = 90) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (e := _execution(client, execution_id))["finished_at"] and e,
            timeout=timeout,
        )
    )


def _running(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    return dict(
        wait_for(lambda: (e := _execution(client, execution_id))["status"] == "running" and e)
    )


@pytest.fixture(scope="module")
def host_operations() -> bool:
    """This module's servers run only the test operations (``test.sleep`` and the like)."""
    return False


@on_sqlite_only("shared_database_url")
def test_a_mutating_call_answers_202_with_the_execution_and_its_location(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    answer = _submit(
        shared_client, "test.sleep", f"{unique}-a", journal=str(tmp_path / "j"), seconds=0.2
    )
    assert answer.status_code == 202
    execution = answer.json()["execution"]
    assert answer.headers["location"] == f"/v1/executions/{execution['id']}"
    assert execution["status"] in ("pending", "running")
    assert execution["name"] == "test.sleep" and execution["target"] == f"{unique}-a"
    assert execution["finished_at"] is None and execution["error"] is None
    done = _finished(shared_client, execution["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["slept"] == 0.2
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]


@on_sqlite_only("shared_database_url")
def test_wait_answers_when_the_execution_ends(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    answer = _submit(
        shared_client,
        "test.sleep",
        f"{unique}-a",
        "?wait=true",
        journal=str(tmp_path / "j"),
        seconds=0.3,
    )
    assert answer.status_code == 200
    assert answer.json()["execution"]["status"] == "succeeded"
    assert answer.headers["location"].startswith("/v1/executions/ex-")


@on_sqlite_only("shared_database_url")
def test_wait_with_a_timeout_answers_202_while_it_still_runs(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    answer = _submit(
        shared_client,
        "test.sleep",
        f"{unique}-a",
        "?wait=true&timeout=0.5",
        journal=str(tmp_path / "j"),
        seconds=20,
    )
    assert answer.status_code == 202
    assert answer.json()["execution"]["status"] in ("pending", "running")
    shared_client.post(f"/v1/executions/{answer.json()['execution']['id']}/cancel")


@on_sqlite_only("shared_database_url")
def test_a_failure_keeps_its_type_message_and_exit_code(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    answer = _submit(
        shared_client, "test.no-capacity", f"{unique}-a", "?wait=true", journal=str(tmp_path / "j")
    )
    execution = answer.json()["execution"]
    assert execution["status"] == "failed"
    assert execution["error"] == {
        "type": "NoCapacityError",
        "message": "no availability zone can run m5.large on spot right now",
        "exit_code": 4,
    }
    assert execution["result"] is None


@on_sqlite_only("shared_database_url")
def test_a_bug_in_an_operation_fails_it_with_its_traceback_in_the_log(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    execution = _submit(shared_client, "test.broken", f"{unique}-a", "?wait=true").json()[
        "execution"
    ]
    assert execution["status"] == "failed"
    assert execution["error"]["type"] == "InternalError"
    assert execution["error"]["exit_code"] == 1
    assert "ZeroDivisionError" in execution["error"]["message"]
    log = shared_client.get(f"/v1/executions/{execution['id']}/log").text
    assert "Traceback" in log and "a bug in the operation" in log


@on_sqlite_only("shared_database_url")
def test_cancel_a_running_execution_stops_it(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    execution = _submit(
        shared_client, "test.sleep", f"{unique}-a", journal=str(path), seconds=60
    ).json()
    identifier = execution["execution"]["id"]
    _running(shared_client, identifier)
    wait_for(lambda: journal(path))
    answer = shared_client.post(f"/v1/executions/{identifier}/cancel?wait=true&timeout=60")
    assert answer.status_code == 200
    cancelled = answer.json()["execution"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"]["exit_code"] == 130
    assert [entry["event"] for entry in journal(path)] == ["start", "stop"]
    again = shared_client.post(f"/v1/executions/{identifier}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["message"].startswith(f"execution {identifier} already cancelled")


def test_cancel_a_pending_execution_means_it_never_starts(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    first = _submit(
        shared_client, "test.sleep", f"{unique}-a", journal=str(tmp_path / "a"), seconds=3
    )
    second = _submit(
        shared_client, "test.sleep", f"{unique}-a", journal=str(tmp_path / "b"), seconds=0.1
    )
    identifier = second.json()["execution"]["id"]
    answer = shared_client.post(f"/v1/executions/{identifier}/cancel")
    assert answer.status_code == 202
    assert answer.json()["execution"]["status"] == "cancelled"
    _finished(shared_client, first.json()["execution"]["id"])
    assert journal(tmp_path / "b") == []
    assert _execution(shared_client, identifier)["started_at"] is None


def test_list_shows_active_executions_and_completed_ones_on_request(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    client, a, b = shared_client, f"{unique}-a", f"{unique}-b"
    done = _submit(client, "test.no-capacity", a, "?wait=true", journal=str(tmp_path / "j"))
    busy = _submit(client, "test.sleep", b, journal=str(tmp_path / "k"), seconds=30)
    # Earlier tests on this server left nothing active, and their completed ones are theirs.
    active = [e["id"] for e in client.get("/v1/executions").json()["executions"]]
    assert active == [busy.json()["execution"]["id"]]
    every = client.get("/v1/executions", params={"include_completed": "true"}).json()
    assert [e["id"] for e in every["executions"] if e["target"] in (a, b)] == [
        done.json()["execution"]["id"],
        busy.json()["execution"]["id"],
    ]
    only_a = client.get("/v1/executions", params={"include_completed": "true", "target": a})
    assert [e["target"] for e in only_a.json()["executions"]] == [a]
    client.post(f"/v1/executions/{busy.json()['execution']['id']}/cancel")


@on_sqlite_only("shared_database_url")
def test_the_log_holds_the_lines_the_operation_printed_and_follow_streams_them(
    shared_client: httpx.Client, shared_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    execution = _submit(
        shared_client, "test.sleep", f"{unique}-a", journal=str(tmp_path / "j"), seconds=1
    )
    identifier = execution.json()["execution"]["id"]
    with shared_client.stream("GET", f"/v1/executions/{identifier}/log?follow=true") as streamed:
        assert streamed.status_code == 200
        lines = list(streamed.iter_lines())
    # The stream ended because the execution did: its last line says how.
    assert lines[-1] == "mapt: INFO: succeeded"
    # The worker's log lines and the service's own read as the CLI prints log lines.
    assert f"mapt: INFO: step 1 of {unique}-a" in lines
    assert lines[0] == f"mapt: INFO: test.sleep on {unique}-a submitted"
    assert _execution(shared_client, identifier)["status"] == "succeeded"
    plain = shared_client.get(f"/v1/executions/{identifier}/log").text.splitlines()
    assert plain == lines
    # In the server's log, a worker's line has the shape of the server's own lines:
    # the level as a field, the message without mapt's prefix, and the execution.
    echoed = [entry for entry in shared_server.log() if entry.get("execution_id") == identifier]
    step = next(entry for entry in echoed if entry["message"] == f"step 1 of {unique}-a")
    assert step["level"] == "INFO" and step["logger"] == "mapt.service.worker"
    assert set(step) >= {"time", "level", "logger", "message", "execution_id"}
    assert not any(entry["message"].startswith("mapt: ") for entry in echoed)


def test_operations_on_one_target_run_one_after_the_other(
    shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    client, path, release = shared_client, tmp_path / "j", tmp_path / "release"
    a, b = f"{unique}-a", f"{unique}-b"
    first = _submit(client, "test.sleep", a, journal=str(path), until=str(release), seconds=90)
    second = _submit(client, "test.sleep", a, journal=str(path), seconds=0.2)
    other = _submit(client, "test.sleep", b, journal=str(path), seconds=0.2)
    one, two, three = (answer.json()["execution"]["id"] for answer in (first, second, other))
    # Another target does not wait: it runs to its end while the first still runs.
    assert _finished(client, three)["status"] == "succeeded"
    assert _execution(client, one)["status"] == "running"
    assert _execution(client, two)["started_at"] is None
    release.touch()
    for identifier in (one, two):
        assert _finished(client, identifier)["status"] == "succeeded"
    events = {(e["execution"], e["event"]): e["at"] for e in journal(path)}
    assert events[(two, "start")] >= events[(one, "finish")]
    assert events[(three, "finish")] < events[(one, "finish")]


@on_sqlite_only("shared_database_url")
def test_executions_run_in_worker_processes_that_share_no_process_state(
    shared_client: httpx.Client, shared_server: ServerProcess, unique: str, tmp_path: Path
) -> None:
    path = str(tmp_path / "j")
    together = [
        _submit(shared_client, "test.globals", target, journal=path, seconds=1)
        for target in (f"{unique}-a", f"{unique}-b")
    ]
    later = _submit(
        shared_client, "test.globals", f"{unique}-c", "?wait=true", journal=path, seconds=0
    )
    results = [_finished(shared_client, a.json()["execution"]["id"])["result"] for a in together]
    results.append(later.json()["execution"]["result"])
    assert [(r["config"], r["environment"]) for r in results] == [(None, None)] * 3
    pids = {r["pid"] for r in results}
    assert len(pids) == 3 and shared_server.pid not in pids


def test_threads_would_share_pulumi_configuration() -> None:
    """Why executions get processes: on this Pulumi SDK, a thread sees the stack
    configuration another thread set (one shared dict), as the probe reports."""
    from pulumi.runtime.config import CONFIG, set_config

    def set_in_thread() -> None:
        set_config("mapt:probe", "from another thread")

    thread = threading.Thread(target=set_in_thread)
    thread.start()
    thread.join()
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.append(CONFIG.get().get("mapt:probe")))
    reader.start()
    reader.join()
    CONFIG.get().pop("mapt:probe", None)
    assert seen == ["from another thread"]
    assert service_operations.OPERATIONS["test.globals"].run is service_operations.process_globals


@contextmanager
def _restarted(server: ServerProcess, token: str) -> Iterator[httpx.Client]:
    """A client of a new server on the same database (the first one is gone)."""
    again = ServerProcess(
        server.database_url,
        server.log_path.with_name("restarted.log"),
        timing=server.timing,
        host_operations=server.host_operations,
    )
    with running(again), again.client(token) as client:
        yield client


@pytest.mark.parametrize("kill", ["server", "server and workers"])
def test_sigkill_during_an_execution_then_restart_finishes_it_once(
    server: ServerProcess, tmp_path: Path, kill: str
) -> None:
    """With the workers killed too, an execution beside it that cannot resume fails with
    the reason instead of running again (one crash, one restart, for both: each server's
    start costs seconds of CPU)."""
    token = make_token(server.database_url, "ci")
    path, once = tmp_path / "j", tmp_path / "once"
    with server.client(token) as client:
        answer = _submit(
            client, "test.sleep", "host-a", journal=str(path), seconds=120, resumed_seconds=0.5
        )
        identifier = answer.json()["execution"]["id"]
        if kill == "server and workers":
            single = _submit(client, "test.sleep-once", "host-b", journal=str(once), seconds=30)
            _running(client, single.json()["execution"]["id"])
            wait_for(lambda: journal(once))
        _running(client, identifier)
        wait_for(lambda: journal(path))
    if kill == "server":
        server.signal(signal.SIGKILL)
        server.wait()
    else:
        server.kill_everything()
    with _restarted(server, token) as client:
        done = _finished(client, identifier)
        log = client.get(f"/v1/executions/{identifier}/log").text
        if kill == "server and workers":
            failed = _finished(client, single.json()["execution"]["id"])
    assert done["status"] == "succeeded", log
    assert done["attempts"] == 2
    events = journal(path)
    assert [e["event"] for e in events].count("finish") == 1
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 2 and starts[1]["overlapping"] == []
    assert "it will resume" in log
    if kill == "server and workers":
        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "OperationError"
        assert "cannot be resumed" in failed["error"]["message"]
        assert [e["event"] for e in journal(once)] == ["start"]


def test_sigterm_stops_gracefully_and_hands_the_execution_back(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = make_token(server.database_url, "ci")
    path = tmp_path / "j"
    with server.client(token) as client:
        answer = _submit(
            client, "test.sleep", "host-a", journal=str(path), seconds=120, resumed_seconds=0.5
        )
        identifier = answer.json()["execution"]["id"]
        _running(client, identifier)
        wait_for(lambda: journal(path))
    server.signal(signal.SIGTERM)
    server.wait()
    assert [e["event"] for e in journal(path)] == ["start", "stop"]
    messages = [entry["message"] for entry in server.log()]
    assert "stopping: workers hand their executions back" in messages
    assert not [m for m in messages if "did not stop" in str(m)]  # not killed at the grace
    with _restarted(server, token) as client:
        assert _execution(client, identifier)["status"] in ("pending", "running")
        done = _finished(client, identifier)
    assert done["status"] == "succeeded"
    assert [e["event"] for e in journal(path)] == ["start", "stop", "start", "finish"]


@on_sqlite_only("shared_database_url")
def test_a_host_whose_execution_lost_its_worker_is_settled_not_left_busy(
    shared_server: ServerProcess, shared_client: httpx.Client, unique: str, tmp_path: Path
) -> None:
    """A worker killed mid-operation (nothing recorded): an operation that cannot resume
    fails at once, and the dispatcher settles the host it was moving on (here an
    update's: ERROR, with the reason), which nothing else would."""
    path = tmp_path / "j"
    answer = _submit(
        shared_client, "test.sleep-once", unique, journal=str(path), seconds=120,
        until=str(tmp_path / "never"),
    )  # fmt: skip
    identifier = answer.json()["execution"]["id"]
    database = open_database(shared_server.database_url, migrate=False)
    try:
        now = datetime.now(timezone.utc)
        with database.transaction() as connection:  # as an admitted update records it
            connection.execute(
                hosts.insert().values(
                    name=unique, state="UPDATING", fields={"name": unique}, record=None,
                    execution_id=identifier, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        [start] = wait_for(lambda: journal(path))
        os.kill(start["pid"], signal.SIGKILL)
        store = Hosts(database, Executions(database))
        host = wait_for(lambda: (h := store.get(unique)).state is HostState.ERROR and h, timeout=60)
    finally:
        database.dispose()
    assert _execution(shared_client, identifier)["status"] == "failed"
    assert host.execution_id == identifier
    assert host.error is not None and host.error.message.startswith(
        "its worker process ended before recording the end"
    )
    assert host.error.message.endswith("and test.sleep-once cannot be resumed")


def _forkserver(server: ServerProcess) -> psutil.Process:
    """The server's forkserver: the child that runs multiprocessing's forkserver."""

    def found() -> psutil.Process | None:
        for child in psutil.Process(server.pid).children():
            with suppress(psutil.NoSuchProcess):
                if "multiprocessing.forkserver" in " ".join(child.cmdline()):
                    return child
        return None

    return cast(psutil.Process, wait_for(found))


def _gone(process: psutil.Process) -> bool:
    """Ended: no longer running, or a zombie its parent has not reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@on_sqlite_only()
@pytest.mark.parametrize("end", ["the operation finishes", "the server stops"])
def test_a_worker_outlives_its_forkserver_and_keeps_its_execution(
    server: ServerProcess, tmp_path: Path, end: str
) -> None:
    """Once its forkserver is gone (killed with the server's process group, or out of
    memory), multiprocessing says each of its workers ended: the server must go on
    seeing the running ones, and neither hand their executions to another worker nor
    stop without waiting for them."""
    token = make_token(server.database_url, "ci")
    path, until = tmp_path / "j", tmp_path / "until"
    with server.client(token) as client:
        answer = _submit(
            client, "test.sleep", "host-a", journal=str(path), seconds=120, until=str(until),
            resumed_seconds=0.5,
        )  # fmt: skip
        identifier = answer.json()["execution"]["id"]
        _running(client, identifier)
        worker = psutil.Process(wait_for(lambda: journal(path))[0]["pid"])
        forkserver = _forkserver(server)
        forkserver.kill()
        wait_for(lambda: _gone(forkserver))
        # Two more executions, one after the other: the second is claimed on a
        # dispatcher round begun after the kill, whose reaping came first.
        for target in ("host-b", "host-c"):
            other = _submit(client, "test.sleep", target, journal=str(tmp_path / target))
            assert _finished(client, other.json()["execution"]["id"])["status"] == "succeeded"
        still = _execution(client, identifier)
        assert (still["status"], still["attempts"]) == ("running", 1)
        assert not _gone(worker)
        if end == "the operation finishes":
            until.touch()
            done = _finished(client, identifier)
            assert (done["status"], done["attempts"]) == ("succeeded", 1)
            assert [e["event"] for e in journal(path)] == ["start", "finish"]
            return
    server.signal(signal.SIGTERM)
    server.wait()
    assert _gone(worker)  # the server waited for it
    assert [e["event"] for e in journal(path)] == ["start", "stop"]
    with _restarted(server, token) as client:
        done = _finished(client, identifier)
        log = client.get(f"/v1/executions/{identifier}/log").text
    assert (done["status"], done["attempts"]) == ("succeeded", 2), log
    assert "stopped by SIGTERM: its server is stopping; it will resume" in log
    assert "exit code" not in log


@on_sqlite_only("shared_database_url")
def test_unknown_execution_is_a_json_404(shared_client: httpx.Client) -> None:
    answer = shared_client.get("/v1/executions/ex-nothing")
    assert answer.status_code == 404
    assert answer.json()["error"] == {
        "type": "NotFoundError",
        "message": "no execution has the id 'ex-nothing'",
        "exit_code": 2,
    }


@on_sqlite_only("shared_database_url")
def test_bad_bodies_are_refused_naming_the_field(shared_client: httpx.Client) -> None:
    unknown = shared_client.post(
        "/v1/test/executions", json={"name": "test.sleep", "target": "a", "colour": "red"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "colour"
    assert unknown.json()["error"]["message"] == "colour is not a field of this request"
    wrong = shared_client.post("/v1/test/executions", json={"name": "test.sleep", "target": 5})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "target"
    assert wrong.json()["error"]["message"].startswith("target 5: ")
    huge = shared_client.post(
        "/v1/test/executions",
        content=json.dumps({"name": "x", "target": "a", "arguments": {"pad": "x" * 70_000}}),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["type"] == "PayloadTooLargeError"
    unreadable = shared_client.post(
        "/v1/test/executions", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert unreadable.status_code == 422
    assert unreadable.json()["error"]["field"] == "body"
    assert unreadable.json()["error"]["message"] == (
        "body: the request body cannot be read as JSON "
        "(Expecting property name enclosed in double quotes)"
    )
    timeout = shared_client.post("/v1/executions/ex-x/cancel?wait=true&timeout=-1")
    assert timeout.status_code == 422 and timeout.json()["error"]["field"] == "timeout"


@needs_postgres()
def test_two_servers_on_one_postgresql_share_the_work_and_run_nothing_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    first = ServerProcess(
        postgres_url, tmp_path / "one" / "server.log", workers=1, host_operations=False
    )
    second = ServerProcess(
        postgres_url, tmp_path / "two" / "server.log", workers=1, host_operations=False
    )
    token = make_token(postgres_url, "ci")
    path = tmp_path / "j"
    with running(first), running(second), first.client(token) as client:
        submitted = [
            _submit(client, "test.sleep", f"host-{n}", journal=str(path), seconds=1).json()
            for n in range(4)
        ]
        identifiers = [answer["execution"]["id"] for answer in submitted]
        for identifier in identifiers:
            assert _finished(client, identifier)["status"] == "succeeded"
        claimed_by = {
            line.split("claimed by server ", 1)[1]
            for identifier in identifiers
            for line in client.get(f"/v1/executions/{identifier}/log").text.splitlines()
            if "claimed by server" in line
        }
    assert len(claimed_by) == 2  # both servers ran some
    starts = [entry["execution"] for entry in journal(path) if entry["event"] == "start"]
    assert sorted(starts) == sorted(identifiers)  # each ran exactly once
