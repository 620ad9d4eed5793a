"""``mapt pool lease`` against a stand-in server on 127.0.0.1: what it takes and writes.

The stand-in answers the lease the way ``mapt serve`` does (``POST
/v1/pools/NAME/leases``, 201 with the lease, the host and its connection) and records
each request, so a test sees whether a lease was taken at all. What a real server
leases is tested in ``tests/service/test_pools.py``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.harness.pulumi_mocks import FAKE_PRIVATE_KEY_PEM

LEASE_ID = "lease-7f3a"
MOMENT = "2026-11-22T08:00:00Z"


@dataclass
class PoolServer:
    """The stand-in's state: the member it leases, and the paths it was sent."""

    url: str = ""
    host_name: str = "p1-1"
    requests: list[str] = field(default_factory=list)

    def lease_document(self) -> dict[str, Any]:
        host = {
            "name": self.host_name,
            "state": "RUNNING",
            "address": "203.0.113.7",
            "username": "fedora",
            "created_at": MOMENT,
            "updated_at": MOMENT,
        }
        lease = {"id": LEASE_ID, "host": self.host_name, "holder": "ci", "state": "active"}
        connection = {
            "address": "203.0.113.7",
            "username": "fedora",
            "private_key": FAKE_PRIVATE_KEY_PEM,
        }
        return {"lease": lease, "host": host, "connection": connection}


@pytest.fixture
def pool_server() -> Iterator[PoolServer]:
    state = PoolServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append(f"POST {self.path}")
            body = json.dumps(state.lease_document()).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def lease(server: PoolServer, *args: str, **env: str) -> Any:
    from mapt.cli import app

    return CliRunner().invoke(
        app,
        ["pool", "lease", "p1", *args, "--server", server.url],
        env={"MAPT_TOKEN": "mapt_test_token", "GITHUB_OUTPUT": "", **env},
    )


def test_a_line_break_in_an_output_writes_nothing_and_names_the_lease_to_release(
    pool_server: PoolServer, tmp_path: Path
) -> None:
    pool_server.host_name = "p1-1\ninjected=yes"
    github_output = tmp_path / "github_output"
    github_output.write_text("")
    result = lease(pool_server, GITHUB_OUTPUT=str(github_output))
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "'pool-host' holds a line break" in line
    assert f"mapt pool release p1 {LEASE_ID}" in line
    assert github_output.read_text() == ""
