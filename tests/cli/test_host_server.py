"""``mapt aws host create|destroy|list --server`` and ``mapt execution``, against a real
``mapt serve`` (uvicorn on a free 127.0.0.1 port) whose workers run the host lifecycle
on simulated AWS: what the user sees and gets is what the local command gives."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.host_harness import FAMILIES, Harness
from tests.cli.stand_in_server import StandIn, stand_in_server
from tests.harness.pulumi_mocks import FAKE_PRIVATE_KEY_PEM
from tests.harness.service import ServerProcess, make_token, running, wait_for
from tests.harness.service_operations import journal
from tests.harness.spot_market import SpotMarket


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for this module's tests that run executions (a server's start and stop
    cost about 6 s of CPU): each test has its own project, state folder and token, and
    checks what its own commands added, so none sees another's hosts or executions."""
    folder = tmp_path_factory.mktemp("server")
    url = f"sqlite:///{folder / 'records' / 'service.sqlite3'}"
    server = ServerProcess(url, folder / "server" / "server.log")
    with running(server) as started:
        yield started


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for this module's tests that must leave it empty (a refusal sends
    nothing): its database holds no execution or host while the code is right, so they
    share it instead of starting one each."""
    folder = tmp_path_factory.mktemp("empty-server")
    url = f"sqlite:///{folder / 'records' / 'service.sqlite3'}"
    # Nothing runs on it: a host operation sent would stay pending, and still be seen.
    server = ServerProcess(url, folder / "server" / "server.log", host_operations=False)
    with running(server) as started:
        yield started


@pytest.fixture
def proxy_page() -> Iterator[StandIn]:
    """A proxy in front of nothing: an HTML 404 page for every path."""
    page = "<html><body><h1>404 Not Found</h1></body></html>"
    with stand_in_server(lambda method, path: (404, page)) as proxy:
        yield proxy


def _new_token(server: ServerProcess) -> str:
    """A writer's token under a name of its own (names are unique on a server)."""
    return make_token(server.database_url, f"check-{secrets.token_hex(3)}")


@pytest.fixture
def token(server: ServerProcess) -> str:
    return _new_token(server)


def _remote(cli: Harness, server: ServerProcess, token: str, *args: str, **env: str) -> Any:
    return cli.invoke(*args, "--server", server.url, env={"MAPT_TOKEN": token, **env})


def _create_args(project: str, backend: str, conn: Path) -> list[str]:
    return [
        "aws", "host", "create", "--os", "fedora", "--project-name", project, "--spot",
        "--backed-url", backend, "--cpus", "2", "--memory", "8",
        "--compute-families", FAMILIES, "--conn-details-output", str(conn),
    ]  # fmt: skip


def _files(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (p.read_text(), p.stat().st_mode & 0o777) for p in sorted(folder.iterdir())}


def _create_both(
    cli: Harness,
    server: ServerProcess,
    token: str,
    tmp_path: Path,
    *,
    project: str,
    conn: bool,
    extra_flags: tuple[str, ...] = (),
) -> tuple[Any, Any]:
    """The same create run here and with --server (each its own state), as the results."""
    runs = []
    for where, extra in (("local", ()), ("remote", ("--server", server.url))):
        args = _create_args(
            project, f"file://{tmp_path / where / 'state'}", tmp_path / where / "conn"
        )
        if not conn:
            args = args[:-2]
        args += extra_flags
        env = {"GITHUB_OUTPUT": str(tmp_path / f"{where}-gh"), "MAPT_TOKEN": token}
        result = cli.invoke(*args, *extra, env=env)
        assert result.exit_code == 0, (where, result.output, server.text()[-3000:])
        runs.append(result)
    return runs[0], runs[1]


def _here(text: str, tmp_path: Path) -> str:
    return text.replace(str(tmp_path / "local"), str(tmp_path / "remote"))


def test_create_with_server_prints_and_outputs_what_the_local_command_does(
    cli: Harness, market: SpotMarket, server: ServerProcess, token: str, tmp_path: Path
) -> None:
    def listed_hosts() -> list[tuple[str, str]]:
        as_json = _remote(cli, server, token, "aws", "host", "list", "--output", "json")
        assert as_json.exit_code == 0, as_json.output
        return [(h["name"], h["state"]) for h in json.loads(as_json.stdout)["hosts"]]

    before = listed_hosts()  # the hosts of this module's other tests (one server)
    local, remote = _create_both(cli, server, token, tmp_path, project="pr-7", conn=False)
    assert remote.stdout.startswith("Host ready.\n")
    assert remote.stdout == local.stdout
    assert (tmp_path / "remote-gh").read_text() == (tmp_path / "local-gh").read_text()
    # The progress lines of the server's execution were shown on stderr.
    assert "pr-7" in remote.stderr and remote.stderr.count("\n") >= 3
    assert token not in remote.output and token not in server.text()

    listed = _remote(cli, server, token, "aws", "host", "list")
    assert listed.exit_code == 0, listed.output
    # This host's row, not pr-17's or pr-27's (the module's other tests' hosts).
    [row] = [row for row in listed.stdout.splitlines() if "pr-7" in row.replace("│", " ").split()]
    assert "spot" in row
    assert [host for host in listed_hosts() if host not in before] == [("pr-7", "RUNNING")]

    destroy = ("aws", "host", "destroy", "--project-name", "pr-7")
    elsewhere = _remote(cli, server, token, *destroy, "--backed-url", "file:///elsewhere")
    assert elsewhere.exit_code == 2, elsewhere.output
    assert elsewhere.stderr.startswith("Error: --backed-url 'file:///elsewhere' is not what")
    # The job's MAPT_BACKED_URL of the create is the server's: the destroy takes it.
    same = f"file://{tmp_path / 'remote' / 'state'}"
    destroyed = _remote(cli, server, token, *destroy, MAPT_BACKED_URL=same)
    assert destroyed.exit_code == 0, (destroyed.output, server.text()[-3000:])
    assert destroyed.stdout.startswith("Destroyed ") and "(project 'pr-7')" in destroyed.stdout
    again = _remote(cli, server, token, "aws", "host", "destroy", "--project-name", "pr-7")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("Nothing to destroy: project 'pr-7'")


@pytest.mark.parametrize("where", ["unknown-route", "proxy-page"])
def test_destroy_at_a_wrong_server_url_fails_naming_it_instead_of_nothing_to_destroy(
    cli: Harness, empty_server: ServerProcess, proxy_page: StandIn, where: str
) -> None:
    # Both answer 404 for the host; neither says the server has no such host. The
    # first is mapt's own answer, for a path prefix the server does not serve.
    url = {"unknown-route": f"{empty_server.url}/mapt", "proxy-page": proxy_page.url}[where]
    result = cli.invoke(
        "aws", "host", "destroy", "--project-name", "pr-3", "--server", url,
        env={"MAPT_TOKEN": _new_token(empty_server)},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Nothing to destroy" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: cannot tell whether the server") and url in lines[0], lines


@pytest.mark.parametrize(
    "command",
    [("aws", "host", "list"), ("aws", "host", "destroy", "--project-name", "pr-3")],
    ids=["list", "destroy"],
)
def test_a_server_answering_json_that_is_not_mapts_is_one_error_line_naming_it(
    cli: Harness, command: tuple[str, ...]
) -> None:
    with stand_in_server(lambda method, path: (200, {"status": "ok"})) as other:
        result = cli.invoke(*command, "--server", other.url, env={"MAPT_TOKEN": "t0ken-value"})
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: GET {other.url}/v1/hosts") and "not mapt's JSON" in line
    assert result.stdout == ""


def test_create_with_server_writes_the_connection_files_here(
    cli: Harness, market: SpotMarket, server: ServerProcess, token: str, tmp_path: Path
) -> None:
    local, remote = _create_both(cli, server, token, tmp_path, project="pr-17", conn=True)
    assert remote.stdout == _here(local.stdout, tmp_path)
    assert "connection files:" in remote.stdout
    local_files, remote_files = (
        _files(tmp_path / "local" / "conn"),
        _files(tmp_path / "remote" / "conn"),
    )
    assert remote_files == local_files
    assert remote_files["id_rsa"] == (FAKE_PRIVATE_KEY_PEM.rstrip("\n") + "\n", 0o600)
    assert (tmp_path / "remote-gh").read_text() == _here(
        (tmp_path / "local-gh").read_text(), tmp_path
    )


def test_create_with_server_whose_files_cannot_be_written_says_how_to_destroy_the_host(
    cli: Harness,
    market: SpotMarket,
    server: ServerProcess,
    token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mapt.client._client import Hosts

    conn = tmp_path / "conn"
    read_connection = Hosts.connection

    def folder_becomes_a_file(hosts: Hosts, name: str) -> Any:
        # Checked before the create (a folder that can be made); a file by the time it is.
        conn.write_text("made while the host was created")
        return read_connection(hosts, name)

    monkeypatch.setattr(Hosts, "connection", folder_becomes_a_file)
    args = _create_args("pr-37", f"file://{tmp_path / 'state'}", conn)
    result = _remote(cli, server, token, *args)
    assert result.exit_code == 1, result.output  # the host is made: not bad input
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert "cannot create the connection details folder" in line
    assert line.endswith(
        "The host is made on the server; destroy it with: mapt aws host destroy "
        f"--project-name pr-37 --server {server.url}"
    )


def test_no_wait_prints_the_execution_whose_logs_and_record_the_execution_commands_show(
    cli: Harness, server: ServerProcess, token: str, tmp_path: Path
) -> None:
    args = _create_args("pr-8", f"file://{tmp_path / 'server-state'}", tmp_path / "conn")
    submitted = _remote(cli, server, token, *args[:-2], "--no-wait")
    assert submitted.exit_code == 0, submitted.output
    execution_id = submitted.stdout.strip()
    assert execution_id and "\n" not in execution_id
    assert not (tmp_path / "conn").exists()

    followed = _remote(cli, server, token, "execution", "logs", execution_id, "--follow")
    assert followed.exit_code == 0, followed.output
    lines = followed.stdout.splitlines()
    assert len(lines) >= 2 and any("pr-8" in line for line in lines), lines
    shown = _remote(cli, server, token, "execution", "get", execution_id, "--output", "json")
    execution = json.loads(shown.stdout)["execution"]
    assert (execution["id"], execution["name"], execution["target"], execution["status"]) == (
        execution_id, "hosts.create", "pr-8", "succeeded",
    )  # fmt: skip
    assert execution["result"]["allocation"]["region"]
    text = _remote(cli, server, token, "execution", "get", execution_id)
    assert "status:    succeeded" in text.stdout
    assert _remote(cli, server, token, "execution", "logs", execution_id).stdout == followed.stdout

    pending = _remote(cli, server, token, "execution", "list")
    assert pending.stdout.strip() == "No executions running or pending."
    every = _remote(
        cli, server, token, "execution", "list", "--include-completed", "--target", "pr-8",
        "--output", "json",
    )  # fmt: skip
    assert [e["id"] for e in json.loads(every.stdout)["executions"]] == [execution_id]


def test_cancel_waits_until_the_execution_stopped(
    cli: Harness, server: ServerProcess, token: str, tmp_path: Path
) -> None:
    body = {"name": "test.sleep", "target": "t", "arguments": {
        "seconds": 120, "journal": str(tmp_path / "journal")}}  # fmt: skip
    with server.client(token) as client:
        execution_id = client.post("/v1/test/executions", json=body).json()["execution"]["id"]
    wait_for(lambda: journal(tmp_path / "journal"))  # running, its signal handlers set
    cancelled = _remote(cli, server, token, "execution", "cancel", execution_id)
    assert cancelled.exit_code == 0, (cancelled.output, server.text()[-2000:])
    assert "status:    cancelled" in cancelled.stdout
    again = _remote(cli, server, token, "execution", "cancel", execution_id)
    assert again.exit_code == 2 and again.stderr.startswith("Error: "), again.output
    unknown = _remote(cli, server, token, "execution", "get", "nosuch")
    assert unknown.exit_code == 2 and unknown.stderr.startswith("Error: "), unknown.output


def test_the_token_can_come_from_a_file(
    cli: Harness, empty_server: ServerProcess, tmp_path: Path
) -> None:
    server = empty_server
    (tmp_path / "token").write_text(_new_token(server) + "\n")
    listed = cli.invoke(
        "aws", "host", "list", "--server", server.url, "--token-file", str(tmp_path / "token")
    )
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.strip() == f"No projects in the server {server.url}."


def test_a_failed_create_exits_as_the_local_command_with_one_error_line(
    cli: Harness, server: ServerProcess, token: str, tmp_path: Path
) -> None:
    conn = tmp_path / "conn"
    args = _create_args("pr-9", f"file://{tmp_path / 'server-state'}", conn)
    args[args.index("--cpus") + 1] = "448"  # no machine of the market has that many
    result = _remote(cli, server, token, *args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "448" in errors[0], result.stderr
    assert result.stdout == "" and not conn.exists()


@pytest.mark.parametrize(
    ("extra", "environment", "code", "says"),
    [
        ((), {"MAPT_TOKEN": "mapt_nosuch_secret0000"}, 5, "token"),
        ((), {}, 5, "no API token"),
        (("--ghactions-runner-token", "t0ken-value"), {"MAPT_TOKEN": "x"}, 2, "--server"),
        (("--dry-run",), {"MAPT_TOKEN": "x"}, 2, "--dry-run does not work with --server"),
        (("--conn-details-output", "/dev/null"), {"MAPT_TOKEN": "x"}, 2, "is a file, not a"),
    ],
)
def test_refusals_are_one_error_line_with_the_exit_code_and_send_nothing(
    cli: Harness,
    empty_server: ServerProcess,
    tmp_path: Path,
    extra: tuple[str, ...],
    environment: dict[str, str],
    code: int,
    says: str,
) -> None:
    server = empty_server
    args = _create_args("pr-10", f"file://{tmp_path / 'server-state'}", tmp_path / "conn")
    result = cli.invoke(*args, *extra, "--server", server.url, env=environment)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and says in lines[0], lines
    assert "t0ken-value" not in result.output
    with server.client(_new_token(server)) as client:
        assert client.get("/v1/executions", params={"include_completed": "true"}).json() == {
            "executions": []
        }


def test_no_wait_without_a_server_is_bad_input(cli: Harness) -> None:
    result = cli.create("--no-wait")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: --no-wait applies only with --server: a local command waits"
    )
    assert cli.engine.stack_names() == []


@pytest.mark.parametrize(
    "command", [("execution", "list"), ("execution", "cancel", "some-id", "--no-wait")]
)
def test_execution_commands_need_a_server(cli: Harness, command: tuple[str, ...]) -> None:
    result = cli.invoke(*command, env={"MAPT_TOKEN": "x"})
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: executions live on a server")


SECRET = "mapt_abcdef_0123456789abcdef"


@pytest.mark.parametrize(
    ("token", "given", "says"),
    [
        (f"{SECRET}\nsecond-line", "MAPT_TOKEN", "holds a character that is not printable ASCII"),
        (f"{SECRET}é", "MAPT_TOKEN", "holds a character that is not printable ASCII"),
        (f" {SECRET}", "MAPT_TOKEN", "starts or ends with whitespace"),
        (f"{SECRET} ", "--token-file", "starts or ends with whitespace"),
        (f"{SECRET}é", "--token", "holds a character that is not printable ASCII"),
        # Longer than an error line shows of a value: masked whole, not cut then masked.
        (f"{SECRET * 4} ", "MAPT_TOKEN", "starts or ends with whitespace"),
    ],
    ids=[
        "line-break", "non-ascii", "leading-space", "file-trailing-space", "flag-non-ascii",
        "long",
    ],
)
def test_a_bad_token_value_is_refused_naming_where_it_came_from_without_showing_it(
    cli: Harness, tmp_path: Path, token: str, given: str, says: str
) -> None:
    # The server's address is closed: a token sent would be "cannot reach the server".
    command = ["execution", "list", "--server", "http://127.0.0.1:9"]
    env: dict[str, str] = {}
    if given == "MAPT_TOKEN":
        env["MAPT_TOKEN"] = token
        origin = "MAPT_TOKEN=*** (from the environment): the API token"
    elif given == "--token-file":
        (tmp_path / "token").write_text(f"{token}\n")
        command += ["--token-file", str(tmp_path / "token")]
        origin = f"the API token of --token-file '{tmp_path / 'token'}'"
    else:
        command += ["--token", token]
        origin = "the API token of --token"
    result = cli.invoke(*command, env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == f"Error: {origin} {says}"
    assert "0123456789" not in result.output and "second-line" not in result.output
    assert "abcdef" not in result.output


def test_create_with_server_writes_an_air_gapped_hosts_bastion_files_here(
    cli: Harness, market: SpotMarket, server: ServerProcess, token: str, tmp_path: Path
) -> None:
    local, remote = _create_both(
        cli, server, token, tmp_path, project="pr-27", conn=True, extra_flags=("--airgap",)
    )
    assert remote.stdout == _here(local.stdout, tmp_path)
    local_files = _files(tmp_path / "local" / "conn")
    remote_files = _files(tmp_path / "remote" / "conn")
    assert {"bastion_host", "bastion_username", "bastion_id_rsa"} <= set(local_files)
    assert remote_files == local_files
    assert remote_files["bastion_id_rsa"][1] == 0o600
    assert "PRIVATE KEY" not in server.text()


def test_refresh_ip_with_server_prints_the_new_address_and_rewrites_the_host_file(
    cli: Harness, market: SpotMarket, server: ServerProcess, token: str, tmp_path: Path
) -> None:
    conn = tmp_path / "conn"
    args = [a for a in _create_args("pr-12", f"file://{tmp_path / 'state'}", conn) if a != "--spot"]
    created = _remote(cli, server, token, *args)
    assert created.exit_code == 0, (created.output, server.text()[-3000:])
    old = (conn / "host").read_text().strip()

    local = cli.invoke("aws", "host", "refresh-ip", "--project-name", "pr-12")
    assert local.exit_code == 2 and local.stderr.startswith("Error: refresh-ip runs on the server")

    refresh = ("aws", "host", "refresh-ip", "--project-name", "pr-12")
    changed = _remote(cli, server, token, *refresh, "--conn-details-output", str(conn))
    assert changed.exit_code == 0, (changed.output, server.text()[-3000:])
    new = (conn / "host").read_text().strip()
    assert new != old
    assert changed.stdout.startswith(f"Host 'pr-12' has a new address: {new}\n")
    assert f"released:          {old}" in changed.stdout
    as_json = _remote(cli, server, token, *refresh, "--output", "json")
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document["old_address"] == new and document["new_address"] not in (old, new)
