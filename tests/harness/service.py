"""Real servers for the service's tests: processes on a free 127.0.0.1 port, over HTTP.

``ServerProcess`` starts ``tests.harness.service_server`` (``run_server`` with the test
operations) or the ``mapt serve`` command itself, waits for its "listening on" log
line, and hands out httpx clients. Each server runs in its own session, so a test can
SIGKILL it alone or with its worker processes.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from mapt.service import create_token, open_database

REPOSITORY = Path(__file__).resolve().parents[2]
# Short beats and leases, so crash recovery takes seconds in tests (the lease outlasts
# a heartbeat delayed by a loaded machine: a lost claim would re-run the execution).
# The dispatcher looks for work each 0.5 s: a submit wakes it at once, so only an
# execution waiting for a free worker slot, or a lost claim, waits for the next look,
# and its looks (a reap, a keep-alive, a recovery, a claim) cost a server about 28 ms
# of CPU a second each 0.1 s, 8 ms each 0.5 s: a server idles most of its life.
FAST_TIMING = {
    "heartbeat": 0.3, "lease": 5.0, "poll": 0.5, "shutdown_grace": 20.0, "leader": 1.0,
}  # fmt: skip
# Empty: unset, as far as mapt is concerned (a test hands a server credentials in env).
NO_GITHUB = {
    name: ""
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "MAPT_GHACTIONS_APP_ID",
                 "MAPT_GHACTIONS_APP_INSTALLATION_ID", "MAPT_GHACTIONS_APP_PRIVATE_KEY")
}  # fmt: skip
_START_TIMEOUT = 60.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client of the test servers: httpx builds a new
    one per client otherwise (loading the CA bundle, 35 ms of CPU), and tests poll with
    a client per look. The servers answer plain HTTP; the context only stands ready."""
    return ssl.create_default_context()


class ServerProcess:
    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        workers: int = 2,
        timing: dict[str, float] | None = None,
        command: list[str] | None = None,
        recovery: dict[str, float] | None = None,
        env: dict[str, str] | None = None,
        host_operations: bool = True,
    ) -> None:
        """``host_operations=False``: the server registers only the test operations
        (``tests.harness.service_operations``), for tests that run nothing else. Its
        forkserver then preloads none of what the simulated host operations import
        (pulumi_aws's program modules, moto, the market: about 3 s of CPU a start)."""
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.timing = FAST_TIMING if timing is None else timing
        self.command = command
        self.recovery = recovery or {}
        self.env = env or {}
        self.host_operations = host_operations
        # The simulated engine's stacks, shared by this server's workers and its successor.
        self.engine_file = log_path.parent / "engine-stacks.pickle"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # No GitHub credentials of whoever runs the tests reach a test server.
        environment = {**os.environ, **NO_GITHUB, "PYTHONPATH": str(REPOSITORY), **self.env}
        if self.command is None:
            args = [sys.executable, "-m", "tests.harness.service_server"]
        else:
            args = self.command
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            cwd=REPOSITORY,
            env=environment,
            start_new_session=True,
        )
        log.close()
        assert self.process.stdin is not None
        config = {
            "database_url": self.database_url,
            "workers": self.workers,
            "timing": self.timing,
            "recovery": self.recovery,
            "engine_file": str(self.engine_file),
            "host_operations": self.host_operations,
        }
        self.process.stdin.write(json.dumps(config).encode())
        self.process.stdin.close()
        self.url = self._wait_for_address()
        self._wait_until_serving()
        return self

    def _wait_until_serving(self) -> None:
        """Until ``/v1/ping`` answers: the socket listens before the app's startup (the
        dispatcher) has run, and a signal sent in between would stop a half-started server."""
        import httpx

        def answers() -> bool:
            try:
                answer = httpx.get(f"{self.url}/v1/ping", timeout=5, verify=_tls_context())
                return answer.status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=_START_TIMEOUT)

    def _wait_for_address(self) -> str:
        assert self.process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        seen = 0
        while time.monotonic() < deadline:
            entries = self.log()
            for entry in entries[seen:]:
                if "address" in entry and str(entry.get("message", "")).startswith("listening"):
                    return str(entry["address"])
            seen = len(entries)
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}): {self.text()}")
            time.sleep(0.05)
        raise RuntimeError(f"the server did not listen within {_START_TIMEOUT}s: {self.text()}")

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log(self) -> list[dict[str, Any]]:
        """The server's JSON log entries so far (other lines, e.g. ``Error:``, skipped)."""
        entries = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line being written
        return entries

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token is not None:
            headers = {"Authorization": f"Token {token}", **headers}
        # Longer than any ``?wait=true&timeout=`` a test asks for (180 s at most): on a
        # loaded machine a host's create takes minutes, and the server, not the client,
        # must be the one that says how long it waited.
        return httpx.Client(
            base_url=self.url, headers=headers, timeout=300.0, verify=_tls_context()
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, number: int) -> None:
        os.kill(self.pid, number)

    def kill_everything(self) -> None:
        """SIGKILL the server and its worker processes at once."""
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.wait()

    def wait(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.wait(30)
        except subprocess.TimeoutExpired:
            self.kill_everything()


@contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    """The server started for the block; stopped (its whole group killed) after it."""
    try:
        yield server.start()
    finally:
        server.stop()
        if server.process is not None:
            server.kill_everything()  # worker processes a crash test left behind


def make_token(database_url: str, name: str, *, read_only: bool = False) -> str:
    """A token made through the library, as ``mapt serve token create`` makes one."""
    database = open_database(database_url)
    try:
        return create_token(database, name, read_only=read_only)[1]
    finally:
        database.dispose()


def settled(client: httpx.Client, *, timeout: float = 180.0) -> None:
    """Cancel every execution still active on the client's server, and wait until none is:
    the end of a test on a shared server, so that nothing it started runs into the next."""
    active = client.get("/v1/executions").json()["executions"]
    for execution in active:
        client.post(f"/v1/executions/{execution['id']}/cancel")
    wait_for(lambda: client.get("/v1/executions").json()["executions"] == [], timeout=timeout)


def wait_for(
    condition: Any, *, timeout: float = 60.0, interval: float = 0.1, longest: float = 0.5
) -> Any:
    """Poll ``condition()`` until it returns something truthy; that value. The pauses
    start at ``interval`` and grow by half each look up to ``longest``: a condition met
    soon is seen soon, and one that takes seconds (an execution, a host's create) is
    not asked 10 times a second, each look a request a server answers with about 3.5 ms
    of its CPU (the token, the database) and the test with 1 ms of its own."""
    deadline = time.monotonic() + timeout
    pause = interval
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(pause)
        pause = max(interval, min(pause * 1.5, longest))
