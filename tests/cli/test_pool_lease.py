"""``mapt pool lease`` against a stand-in server on 127.0.0.1: what it takes and writes.

The stand-in answers the lease the way ``mapt serve`` does (``POST
/v1/pools/NAME/leases``, 201 with the lease, the host and its connection) and records
each request, so a test sees whether a lease was taken at all. What a real server
leases is tested in ``tests/service/test_pools.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.cli.stand_in_server import stand_in_server
from tests.harness.pulumi_mocks import FAKE_PRIVATE_KEY_PEM

LEASE_ID = "lease-7f3a"
MOMENT = "2026-11-22T08:00:00Z"


@dataclass
class PoolServer:
    """The member the stand-in leases, and the requests it was sent."""

    host_name: str = "p1-1"
    url: str = ""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    # Runs as the lease is taken: what changes on the machine meanwhile.
    meanwhile: Callable[[], None] = lambda: None

    def lease_document(self) -> dict[str, Any]:
        self.meanwhile()
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
    """Answers every request with a new lease, as ``POST /v1/pools/NAME/leases`` does."""
    pool = PoolServer()
    with stand_in_server(lambda method, path: (201, pool.lease_document())) as server:
        pool.url, pool.requests = server.url, server.requests
        yield pool


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


WAITS = [
    ("nan", "'nan' is not a number"),
    ("inf", "'inf' is not a number"),
    ("٣", "'٣' is not a number"),
    ("1e300", "--wait-seconds 1e+300 is out of range: use 0 to 3600"),
    ("3601", "--wait-seconds 3601 is out of range: use 0 to 3600"),
    ("-1", "--wait-seconds -1 is out of range: use 0 to 3600"),
]


@pytest.mark.parametrize(("wait", "named"), WAITS, ids=[wait for wait, _ in WAITS])
def test_a_wait_no_server_would_take_is_exit_2_and_takes_no_lease(
    pool_server: PoolServer, wait: str, named: str
) -> None:
    result = lease(pool_server, "--wait-seconds", wait)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "--wait-seconds" in line and named in line, line
    assert pool_server.requests == []


def test_a_wait_in_range_reaches_the_server_as_seconds(pool_server: PoolServer) -> None:
    result = lease(pool_server, "--wait-seconds", "2.5")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{LEASE_ID}\n"
    ((method, path, body),) = pool_server.requests
    assert (method, path, body["wait"]) == ("POST", "/v1/pools/p1/leases", 2.5)


def test_the_cli_bounds_the_wait_as_the_server_does() -> None:
    from mapt.cli._pool import MAX_LEASE_WAIT_SECONDS
    from mapt.service._pool_routes import LeaseBody

    LeaseBody(ttl="1h", holder="ci", wait=MAX_LEASE_WAIT_SECONDS)
    with pytest.raises(ValueError):
        LeaseBody(ttl="1h", holder="ci", wait=MAX_LEASE_WAIT_SECONDS + 0.001)


@pytest.mark.parametrize("where", ["a-folder", "missing/github_output"])
def test_a_github_output_that_cannot_be_written_is_exit_2_before_any_lease(
    pool_server: PoolServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a-folder").mkdir()
    result = lease(pool_server, "--conn-details-output", "conn", GITHUB_OUTPUT=where)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: GITHUB_OUTPUT={where} (from the environment) "), line
    assert pool_server.requests == [] and not Path("conn").exists()


def test_outputs_that_fail_once_the_lease_is_taken_name_it_to_release(
    pool_server: PoolServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Checked before the lease (a folder that can be created); a file by the time
    # the files are written.
    pool_server.meanwhile = lambda: Path("conn").write_text("x")
    folder_taken = lease(pool_server, "--conn-details-output", "conn")
    Path("conn").unlink()
    github_output = Path("github_output")
    github_output.write_text("")

    def github_output_made_a_folder() -> None:
        github_output.unlink()
        github_output.mkdir()

    pool_server.meanwhile = github_output_made_a_folder
    output_taken = lease(pool_server, GITHUB_OUTPUT=str(github_output))

    folder_reason = "cannot create the connection details folder 'conn'"
    for result, reason in ((folder_taken, folder_reason), (output_taken, "github_output")):
        assert result.exit_code == 1, result.output
        (line,) = result.stderr.strip().splitlines()
        assert reason in line, line
        assert line.endswith(
            f"The lease {LEASE_ID} is held; release it with: mapt pool release p1 {LEASE_ID}"
        )
        assert result.stdout == ""


def test_the_holder_of_a_uid_without_a_passwd_entry_is_its_uid(
    pool_server: PoolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A container's arbitrary uid: getpass.getuser raises KeyError for it.
    import getpass
    import os

    def no_entry() -> str:
        raise KeyError(f"getpwuid(): uid not found: {os.getuid()}")

    monkeypatch.setattr(getpass, "getuser", no_entry)
    result = lease(pool_server, GITHUB_RUN_ID="")
    assert result.exit_code == 0, result.output
    ((_, _, body),) = pool_server.requests
    assert body["holder"] == f"uid{os.getuid()}"
