"""``mapt serve`` itself: it serves, documents its API, refuses a second server on one
SQLite file, and stops on SIGTERM with the CLI's exit code."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

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


def test_mapt_serve_serves_openapi_docs_and_logs_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    with running(_serve(url, tmp_path / "a.log")) as server, server.client() as client:
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
        entries = server.log()
    # The harness pings the server until it serves; the test's own requests follow.
    requests = [e for e in entries if "http" in e and e["http"]["path"] != "/v1/ping"]
    assert {k: v for k, v in requests[0]["http"].items() if k in ("method", "path", "status")} == {
        "method": "GET",
        "path": "/openapi.json",
        "status": 200,
    }


def test_a_second_mapt_serve_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    with running(_serve(url, tmp_path / "a.log")):
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
        .startswith(f"Error: another mapt serve is using the database {tmp_path / 'db.sqlite3'}")
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
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mapt",
            "serve",
            "--workers",
            "0",
            "--database-url",
            f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["Error: --workers 0 must be at least 1"]
