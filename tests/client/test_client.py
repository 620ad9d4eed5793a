"""``mapt.client.Client`` against a real ``mapt serve`` on 127.0.0.1, and its reading of
the server's error answers back into the ``mapt.core`` errors."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mapt.client import (
    AuthenticationError,
    Client,
    ConflictError,
    ExecutionStatus,
    ForbiddenError,
    HostState,
    NotFoundError,
    host_record,
    server_error,
)
from mapt.core import (
    ExitCode,
    InputError,
    Interrupted,
    MaptError,
    NoCapacityError,
    OperationError,
    PrerequisiteError,
    StateLockedError,
)
from mapt.service import HTTP_STATUS, error_body
from mapt.service import ExecutionStatus as ServiceExecutionStatus
from mapt.service._states import BUSY
from mapt.service._states import HostState as ServiceHostState
from tests.cli.host_harness import FAMILIES
from tests.harness.service import ServerProcess, make_token, running


def _instance(kind: type[MaptError]) -> MaptError:
    if issubclass(kind, Interrupted):
        return kind(signal.SIGTERM)
    return kind(f"what {kind.__name__} says")


@pytest.mark.parametrize(("kind", "status"), HTTP_STATUS, ids=[k.__name__ for k, _ in HTTP_STATUS])
def test_every_row_of_the_service_table_comes_back_with_its_exit_code_and_message(
    kind: type[MaptError], status: int
) -> None:
    sent = _instance(kind)
    got = server_error(status, error_body(sent), fallback="unused")
    assert str(got) == str(sent)
    assert got.status == status  # type: ignore[attr-defined]
    assert got.server_type == kind.__name__  # type: ignore[attr-defined]
    if issubclass(kind, Interrupted) or kind is MaptError:
        # The server stopped or failed, not the caller: a failed operation here.
        assert got.exit_code == ExitCode.FAILED
    else:
        assert got.exit_code == kind.exit_code
        core = next(k for k in kind.__mro__ if k.__module__.startswith("mapt.core"))
        assert isinstance(got, core)


def test_specific_statuses_have_their_classes_and_shared_ones_follow_the_exit_code() -> None:
    assert isinstance(
        server_error(404, error_body(InputError("no host")), fallback=""), NotFoundError
    )
    assert isinstance(server_error(409, error_body(InputError("x")), fallback=""), ConflictError)
    assert isinstance(
        server_error(403, error_body(PrerequisiteError("x")), fallback=""), ForbiddenError
    )
    capacity = server_error(503, error_body(NoCapacityError("no spot")), fallback="")
    assert isinstance(capacity, NoCapacityError) and capacity.exit_code == 4
    missing = server_error(503, error_body(PrerequisiteError("no pulumi")), fallback="")
    assert type(missing).__mro__[1] is PrerequisiteError and missing.exit_code == 5


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, AuthenticationError, 5),
        (404, NotFoundError, 2),
        (423, StateLockedError, 3),
        (502, OperationError, 1),
        (503, OperationError, 1),
        (400, InputError, 2),
        # A proxy's or gateway's answers about the way there, not the request.
        (407, OperationError, 1),
        (408, OperationError, 1),
        (429, OperationError, 1),
    ],
)
def test_an_answer_that_is_not_mapts_is_known_by_its_status(
    status: int, kind: type[MaptError], code: int
) -> None:
    got = server_error(status, None, fallback=f"GET http://x/v1/hosts: HTTP {status}")
    assert isinstance(got, kind) and got.exit_code == code
    assert str(got) == f"GET http://x/v1/hosts: HTTP {status}"


def test_the_client_reads_statuses_and_states_in_the_services_own_terms() -> None:
    # One definition for both sides: a status or state the service adds is one the
    # client reads, and "busy" (423 until the execution ends) means the same on both.
    assert ExecutionStatus is ServiceExecutionStatus
    assert HostState is ServiceHostState
    assert {state for state in HostState if state.busy} == BUSY
    assert {s for s in ExecutionStatus if s.finished} == {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
    }


def test_importing_the_client_loads_neither_the_server_nor_its_database() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, mapt.client; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    roots = {name.split(".")[0] for name in loaded}
    assert not {"fastapi", "sqlalchemy", "uvicorn", "starlette"} & roots
    assert not any(name.startswith("mapt.service") for name in loaded)


def test_the_token_goes_in_a_header_never_in_the_url() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"executions": []})

    with Client(
        "http://127.0.0.1:9/", "mapt_abc_s3cret", transport=httpx.MockTransport(answer)
    ) as c:
        assert c.executions.list(target="pr 1/x") == []
    assert seen[0].headers["authorization"] == "Token mapt_abc_s3cret"
    assert "s3cret" not in str(seen[0].url)
    assert seen[0].url.params["target"] == "pr 1/x"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://user:pw@127.0.0.1:8080", "holds credentials"),
        ("ftp://127.0.0.1", "not an http:// or https:// URL"),
        ("127.0.0.1:8080", "not an http:// or https:// URL"),
        ("http://127.0.0.1:80x", "is not a URL"),
    ],
)
def test_a_bad_server_url_is_bad_input(url: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        Client(url, "t")


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        ({"status": "ok"}, lambda c: c.hosts.list()),
        ({"status": "ok"}, lambda c: c.hosts.get("pr-1")),
        ({"status": "ok"}, lambda c: c.executions.get("e-1")),
        ({"status": "ok"}, lambda c: c.hosts.delete("pr-1")),
        ({"status": "ok"}, lambda c: c.version()),
        ({"status": "ok"}, lambda c: c.pools.lease("ci", ttl="1h", holder="job")),
        ({"hosts": [{"name": "pr-1", "state": "fine"}]}, lambda c: c.hosts.list()),
        ({"host": {"name": "pr-1"}}, lambda c: c.hosts.get("pr-1")),
        ({"execution": "done"}, lambda c: c.executions.get("e-1")),
    ],
    ids=["list", "get", "execution", "delete", "version", "lease", "state", "host", "type"],
)
def test_json_that_is_not_mapts_is_a_failed_operation_naming_the_url(
    answer: dict[str, Any], call: Any
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    client = Client("http://127.0.0.1:9/wrong", "t", transport=transport)
    with client, pytest.raises(OperationError) as raised:
        call(client)
    assert "http://127.0.0.1:9/wrong/v1/" in str(raised.value)
    assert "the answer is not mapt's JSON (HTTP 200)" in str(raised.value)


@pytest.mark.parametrize("token", ["", "s3cret\n", " s3cret", "s3cret\t", "s3cré", "s3\x7fcret"])
def test_a_token_a_header_cannot_carry_as_it_is_is_bad_input_not_shown(token: str) -> None:
    with pytest.raises(InputError, match=r"^the API token ") as raised:
        Client("http://127.0.0.1:9", token)
    assert "s3c" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://ci:s3cretpw@127.0.0.1:80x",  # not a URL: its port
        "ftp://ci:s3cretpw@127.0.0.1",  # not http(s)
        "http://ci:s3cretpw@127.0.0.1:8080?x=1",  # credentials (checked before the query)
    ],
)
def test_a_bad_server_url_is_shown_without_its_password(url: str) -> None:
    with pytest.raises(InputError) as raised:
        Client(url, "t")
    assert "s3cretpw" not in str(raised.value)
    assert "ci:***@127.0.0.1" in str(raised.value)


def test_an_unreachable_server_is_a_failed_operation_naming_it() -> None:
    with Client("http://127.0.0.1:9", "t") as client, pytest.raises(OperationError) as raised:
        client.ping()
    assert "cannot reach the mapt server" in str(raised.value)
    assert "127.0.0.1:9" in str(raised.value)


class FakeClock:
    """``time`` as the client reads it (``monotonic``, ``sleep``): seconds pass when it
    sleeps or a fake server holds its answer, at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_waited_call_gives_up_once_its_wait_timeout_has_passed_in_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mapt.client._client as client_module

    clock = FakeClock()
    monkeypatch.setattr(client_module, "time", clock)
    pending = {
        "id": "e-1", "name": "hosts.delete", "target": "pr-1", "status": "pending",
        "created_at": "2026-12-04T03:00:00Z", "started_at": None, "finished_at": None,
        "error": None, "result": None,
    }  # fmt: skip
    polls = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            clock.sleep(float(request.url.params["timeout"]))  # the server holds it
            return httpx.Response(202, json={"execution": pending})
        polls.append(clock.now)
        return httpx.Response(200, json={"execution": pending})

    client = Client("http://127.0.0.1:9", "t", transport=httpx.MockTransport(answer))
    with client, pytest.raises(OperationError, match="still pending after 2s"):
        client.hosts.delete("pr-1", wait_timeout=2)
    # The server held the answer for the 2 s; one look after it, not 2 s more of polls.
    assert clock.now == 1002.0 and polls == [1002.0]


def _host_json(name: str, state: str, **extra: Any) -> dict[str, Any]:
    """A host as the server's JSON has it (``GET /v1/hosts/{name}``)."""
    return {
        "name": name, "state": state, "address": None, "username": None,
        "allocation": None, "hourly_price": None, "fields": {}, "execution_id": "e-1",
        "created_at": "2026-12-04T03:00:00Z", "updated_at": "2026-12-04T03:01:00Z",
        "expires_at": None, "deleted_at": None, "last_error": None, **extra,
    }  # fmt: skip


@pytest.mark.parametrize("state", ["DELETED", "ERROR"])
def test_a_cold_start_whose_member_failed_raises_the_members_error_at_once(state: str) -> None:
    # The member's create failed; its lease stays active until its ttl (an hour).
    failure = {"type": "NoCapacityError", "message": "no spot capacity", "exit_code": 4}
    lease = {"id": "lease-1", "pool": "ci", "host": "ci-1", "state": "active"}
    polls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"lease": lease, "host": _host_json("ci-1", "PENDING")})
        polls.append(request.url.path)
        if len(polls) == 4:  # stands for the ttl running out
            return httpx.Response(200, json={"lease": dict(lease, state="expired")})
        failed = _host_json("ci-1", state, last_error=failure)
        return httpx.Response(202, json={"lease": lease, "host": failed})

    client = Client("http://127.0.0.1:9", "t", transport=httpx.MockTransport(answer))
    with client, pytest.raises(NoCapacityError) as raised:
        client.pools.lease("ci", ttl="1h", holder="job", allow_cold_start=True)
    assert polls == ["/v1/pools/ci/leases/lease-1"]
    assert raised.value.exit_code == 4
    assert str(raised.value).startswith(
        f"lease lease-1: host ci-1 did not start ({state}): no spot capacity. "
        "mapt pool release ci lease-1"
    )


# -- on a real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for this module's tests (a server's start and stop cost about 6 s of
    CPU): each test names its own hosts and tokens and checks what its own calls added."""
    folder = tmp_path_factory.mktemp("server")
    url = f"sqlite:///{folder / 'records' / 'service.sqlite3'}"
    server = ServerProcess(url, folder / "server" / "server.log")
    with running(server) as started:
        yield started


def _token(server: ServerProcess, *, read_only: bool = False) -> str:
    """A token under a name of its own (names are unique on a server)."""
    return make_token(server.database_url, f"t-{secrets.token_hex(3)}", read_only=read_only)


def _fields(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "pr-1", "os": "fedora", "spot": True, "cpus": 2, "memory": 8,
        "compute_families": FAMILIES, "backed_url": f"file://{tmp_path / 'state'}", **extra,
    }  # fmt: skip


def test_ping_and_version_need_no_token_and_the_rest_refuses_a_bad_one(
    server: ServerProcess,
) -> None:
    from mapt import __version__

    with Client(server.url) as anonymous:
        assert anonymous.ping() is True
        assert anonymous.version() == __version__
        with pytest.raises(AuthenticationError) as raised:
            anonymous.hosts.list()
    assert raised.value.exit_code == 5 and "no token" in str(raised.value)
    with Client(server.url, "mapt_nosuch_secret") as wrong, pytest.raises(AuthenticationError):
        wrong.executions.list()


def test_a_host_through_its_lifecycle_with_typed_records(
    server: ServerProcess, tmp_path: Path
) -> None:
    token = _token(server)
    with Client(server.url, token) as client:
        with pytest.raises(NotFoundError, match="no host is named 'pr-1'"):
            client.hosts.get("pr-1")
        # The module's other tests share the server: what this one adds is compared.
        executions = client.executions.list(include_completed=True)
        hosts = [h.name for h in client.hosts.list()]
        with pytest.raises(InputError, match="cpus") as bad:
            client.hosts.create(**_fields(tmp_path, cpus="many"))
        assert bad.value.status == 422  # type: ignore[attr-defined]
        assert client.executions.list(include_completed=True) == executions

        created = client.hosts.create(**_fields(tmp_path, timeout="2h"), wait_timeout=300)
        assert created.status is ExecutionStatus.SUCCEEDED and created.name == "hosts.create"
        record = host_record(created.result, project="pr-1")
        host = client.hosts.get("pr-1")
        assert host.state is HostState.RUNNING and host.address == record.address
        assert host.region == record.region and host.expires_at is not None
        assert [h.name for h in client.hosts.list() if h.name not in hosts] == ["pr-1"]
        with pytest.raises(ConflictError):
            client.hosts.create(**_fields(tmp_path), wait=False)

        resized = client.hosts.update("pr-1", cpus=8, memory=32, wait=False)
        assert resized.status in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)
        with pytest.raises(StateLockedError) as locked:
            client.hosts.delete("pr-1", wait=False)
        assert locked.value.exit_code == 3 and locked.value.status == 423  # type: ignore[attr-defined]
        assert client.executions.wait(resized.id, timeout=300).status is ExecutionStatus.SUCCEEDED
        assert client.hosts.get("pr-1").fields["cpus"] == 8

        deleted = client.hosts.delete("pr-1", wait_timeout=300)
        assert deleted.result["project"] == "pr-1" and deleted.result["destroyed"]
        assert client.hosts.get("pr-1").state is HostState.DELETED
        names = [e.name for e in client.executions.list(include_completed=True, target="pr-1")]
        assert names == ["hosts.create", "hosts.update", "hosts.delete"]
        lines = list(client.executions.logs(created.id))
        assert any("pr-1" in line for line in lines)

    reader = _token(server, read_only=True)
    with Client(server.url, reader) as read_only, pytest.raises(ForbiddenError) as refused:
        read_only.hosts.create(**_fields(tmp_path, name="pr-2"))
    assert refused.value.exit_code == 5 and "read-only" in str(refused.value)
    assert token not in server.text() and reader not in server.text()


def test_status_and_connection_of_a_running_host(server: ServerProcess, tmp_path: Path) -> None:
    from tests.harness.pulumi_mocks import FAKE_PRIVATE_KEY_PEM

    with Client(server.url, _token(server)) as client:
        client.hosts.create(**_fields(tmp_path, name="pr-5"), wait_timeout=300)
        described, status = client.hosts.status("pr-5")
        assert described.state is HostState.RUNNING and status.host == described.address
        assert set(status.stacks) >= {"host-pr-5", "spotOption-pr-5"}
        connection = client.hosts.connection("pr-5")
        assert connection.host == described.address and connection.username == "fedora"
        assert connection.private_key == FAKE_PRIVATE_KEY_PEM
        assert "PRIVATE KEY" not in repr(connection)
    reader = _token(server, read_only=True)
    with Client(server.url, reader) as read_only, pytest.raises(ForbiddenError):
        read_only.hosts.connection("pr-5")


def test_a_failed_execution_raises_the_error_the_local_command_would(
    server: ServerProcess, tmp_path: Path
) -> None:
    with Client(server.url, _token(server)) as client:
        with pytest.raises(InputError) as raised:
            client.hosts.create(**_fields(tmp_path, name="pr-9", cpus=448), wait_timeout=300)
        assert raised.value.server_type == "NoMatchingInstanceTypesError"  # type: ignore[attr-defined]
        [failed] = client.executions.list(include_completed=True, target="pr-9")
        assert failed.status is ExecutionStatus.FAILED and failed.error is not None
        assert failed.error.exit_code == 2 and str(raised.value) == failed.error.message
        with pytest.raises(InputError):
            failed.raise_for_error()
