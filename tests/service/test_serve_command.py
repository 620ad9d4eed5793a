"""``mapt serve`` itself: it serves, documents its API, refuses a second server on one
SQLite file, and stops on SIGTERM with the CLI's exit code."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapt.cli import app
from mapt.service import EventIntakeSettings
from tests.harness.service import ServerProcess, running


def _serve(database_url: str, log: Path, *extra: str) -> ServerProcess:
    command = [
        sys.executable,
        "-m",
        "mapt",
        "serve",
        "--port",
        "0",
        "--database-url",
        database_url,
        *extra,
    ]
    return ServerProcess(database_url, log, command=command)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``mapt serve`` for the tests that talk to it or start a second one beside it
    (a start and stop cost about 4.5 s of CPU: its forkserver preloads what the host
    operations import). Only the OpenAPI test sends it requests."""
    folder = tmp_path_factory.mktemp("served")
    with running(_serve(f"sqlite:///{folder / 'db.sqlite3'}", folder / "a.log")) as server:
        yield server


def test_mapt_serve_serves_openapi_docs_and_logs_json(served: ServerProcess) -> None:
    with served.client() as client:
        schema = client.get("/openapi.json")
        assert schema.status_code == 200
        paths = schema.json()["paths"]
        assert {
            "/v1/ping",
            "/v1/version",
            "/v1/executions",
            "/v1/executions/{execution_id}",
            "/v1/executions/{execution_id}/log",
            "/v1/executions/{execution_id}/cancel",
        } <= set(paths)
        assert "swagger" in client.get("/docs").text.lower()
        assert client.get("/v1/nowhere").json()["error"]["type"] == "NotFoundError"
        entries = served.log()
    # The harness pings the server until it serves; the test's own requests follow.
    requests = [e for e in entries if "http" in e and e["http"]["path"] != "/v1/ping"]
    assert {k: v for k, v in requests[0]["http"].items() if k in ("method", "path", "status")} == {
        "method": "GET",
        "path": "/openapi.json",
        "status": 200,
    }


def test_a_second_mapt_serve_on_the_same_sqlite_file_is_refused(served: ServerProcess) -> None:
    url = served.database_url
    second = subprocess.run(
        [sys.executable, "-m", "mapt", "serve", "--port", "0", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert second.returncode == 3
    assert (
        second.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"Error: another mapt serve is using the database {url.removeprefix('sqlite:///')}"
        )
    )


def test_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mapt",
                "serve",
                "--port",
                str(port),
                "--database-url",
                f"sqlite:///{tmp_path / 'db.sqlite3'}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use. "
        "Pick another --port, or stop what listens there."
    ]


def test_sigterm_stops_mapt_serve_with_exit_143(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    server = _serve(url, tmp_path / "a.log")
    with running(server):
        server.signal(signal.SIGTERM)
        assert server.wait() == 143
    messages = [entry.get("message") for entry in server.log()]
    assert "stopped" in messages


def test_bad_workers_value_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--workers", "0", "--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}"]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == ["Error: --workers 0 must be at least 1"]
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--recovery-attempts", "0"], "Error: --recovery-attempts 0 must be at least 1"),
        (
            ["--reconcile-interval", "soon"],
            "Error: --reconcile-interval 'soon' is not a duration",
        ),
        (["--recovery-backoff", "-1s"], "Error: --recovery-backoff '-1s' must be longer than zero"),
        (["--breaker-interruptions", "0"], "Error: --breaker-interruptions 0 must be at least 1"),
        (
            ["--breaker-interruptions", "two"],
            "Error: --breaker-interruptions 'two' is not a whole number",
        ),
        (["--breaker-window", "15"], "Error: --breaker-window '15' has no unit after '15'"),
        (["--breaker-cooldown", "0"], "Error: --breaker-cooldown '0' must be longer than zero"),
        (
            ["--replacement-timeout", "soon"],
            "Error: --replacement-timeout 'soon' is not a duration",
        ),
        (["--pool-interval", "often"], "Error: --pool-interval 'often' is not a duration"),
        (
            ["--pool-launches-per-minute", "0"],
            "Error: --pool-launches-per-minute 0 must be at least 1",
        ),
    ],
)
def test_bad_reconciler_flags_are_exit_2_naming_the_flag(
    flags: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["serve", *flags, "--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}"]
    )
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(message)
    assert not (tmp_path / "db.sqlite3").exists()


def test_mapt_serve_sandbox_refuses_an_endpoint_off_the_loopback_before_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://192.0.2.7:5000")
    result = CliRunner().invoke(
        app,
        ["serve", "--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}"],
        env={"MAPT_SANDBOX": "1"},
    )
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "Error: MAPT_SANDBOX=1 (from the environment): --sandbox needs the AWS endpoint on "
        "127.0.0.0/8 or ::1, but ec2 would call http://192.0.2.7:5000"
    )
    assert not (tmp_path / "db.sqlite3").exists()


def test_an_s3_events_backend_without_a_passphrase_or_key_is_refused_before_serving(
    tmp_path: Path,
) -> None:
    """The leader could never set a region's event stack up: said at start (exit 5, one
    line), before the server listens or makes its database, not once a minute in its log."""
    database = tmp_path / "db.sqlite3"
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
    }
    command = [sys.executable, "-m", "mapt", "serve", "--port", "0",
               "--database-url", f"sqlite:///{database}",
               "--events-backend", "s3://events-bucket/mapt"]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=environment
    )
    assert result.returncode == 5, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: the state backend s3://events-bucket/mapt needs a secrets passphrase or a "
        "KMS key. Set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE (the same "
        "value for every run that shares this bucket), or pass --events-secrets-provider "
        "awskms://alias/NAME?region=REGION."
    ]
    assert not database.exists()


@pytest.mark.parametrize(
    ("settings", "environment"),
    [
        (EventIntakeSettings(follow_hosts=True, backend_url="s3://events-bucket/mapt",
                             secrets_provider="awskms://alias/mapt?region=us-east-1"), {}),
        (EventIntakeSettings(follow_hosts=True, backend_url="s3://events-bucket/mapt"),
         {"PULUMI_CONFIG_PASSPHRASE": "a shared passphrase"}),
        # No intake: the backend is unused.
        (EventIntakeSettings(backend_url="s3://events-bucket/mapt"), {}),
    ],
)  # fmt: skip
def test_an_events_backend_with_a_key_or_a_passphrase_or_unused_is_accepted(
    settings: EventIntakeSettings, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings.check_secrets()


def test_a_file_events_backend_is_accepted_and_nothing_is_written_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    backend = tmp_path / "events"
    EventIntakeSettings(follow_hosts=True, backend_url=f"file://{backend}").check_secrets()
    assert not backend.exists()
