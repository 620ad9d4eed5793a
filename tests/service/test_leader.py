"""Leadership: the leader-only loops run on one server at a time, and move when it goes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from mapt.service import Database, LeaderContext, Leadership, LeaderTask, open_database
from mapt.service._leader import LEADER_APPLICATION
from tests.harness.postgres import needs_postgres
from tests.harness.service import ServerProcess, running, wait_for


class Passes:
    """A leader task that counts its passes, per server."""

    def __init__(self) -> None:
        self.by_server: dict[str, int] = {}
        self.lock = threading.Lock()

    def run(self, context: LeaderContext) -> None:
        assert context.leading()
        with self.lock:
            self.by_server[context.server_id] = self.by_server.get(context.server_id, 0) + 1

    def count(self, server: str) -> int:
        with self.lock:
            return self.by_server.get(server, 0)


@contextmanager
def leading(database: Database, server: str, *tasks: LeaderTask) -> Iterator[Leadership]:
    leadership = Leadership(database=database, tasks=tasks, server_id=server, retry=0.1)
    leadership.start()
    try:
        yield leadership
    finally:
        leadership.stop()


def test_the_only_server_on_a_sqlite_file_leads_and_its_tasks_run_until_it_stops(
    tmp_path: Path,
) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    passes = Passes()

    def broken(context: LeaderContext) -> None:
        raise RuntimeError("a bug in one loop")

    try:
        tasks = (LeaderTask("broken", 0.05, broken), LeaderTask("count", 0.05, passes.run))
        with leading(database, "only", *tasks) as leadership:
            # The broken task did not stop the other.
            wait_for(lambda: passes.count("only") >= 3, timeout=30)
            assert leadership.leading()
        stopped_at = passes.count("only")
        assert not leadership.leading()
        threading.Event().wait(0.3)
        assert passes.count("only") == stopped_at
    finally:
        database.dispose()


def test_a_task_needs_a_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval 0 must be > 0"):
        LeaderTask("pools", 0, lambda context: None)


def _terminate_leader_connection(postgres_url: str, server: str) -> int:
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            terminated = connection.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": f"{LEADER_APPLICATION} {server}"},
            ).scalar()
            connection.commit()
    finally:
        engine.dispose()
    return int(terminated or 0)


@needs_postgres()
def test_on_postgresql_one_server_leads_and_another_takes_over_when_it_loses_its_lock(
    postgres_url: str,
) -> None:
    first, second = open_database(postgres_url), open_database(postgres_url)
    passes = Passes()
    task = LeaderTask("count", 0.05, passes.run)
    try:
        with leading(first, "a", task) as a, leading(second, "b", task) as b:
            leader = wait_for(lambda: [s for s in (a, b) if s.leading()], timeout=30)
            assert len(leader) == 1
            old, new = (a, b) if leader[0] is a else (b, a)
            wait_for(lambda: passes.count(old.server_id) >= 2, timeout=30)
            assert passes.count(new.server_id) == 0  # the follower ran nothing

            # The leader's connection is lost (as when its server dies): the lock with it.
            assert _terminate_leader_connection(postgres_url, old.server_id) == 1
            wait_for(lambda: not old.leading(), timeout=30)
            wait_for(lambda: new.leading() or old.leading(), timeout=30)
            now = new if new.leading() else old
            then = passes.count(now.server_id)
            wait_for(lambda: passes.count(now.server_id) > then, timeout=30)
            assert [s.leading() for s in (a, b)].count(True) == 1

            # A leader that stops hands over too.
            now.stop()
            other = old if now is new else new
            wait_for(other.leading, timeout=30)
    finally:
        first.dispose()
        second.dispose()


def _leads(server: ServerProcess) -> bool:
    return any(entry.get("leader") for entry in server.log())


@needs_postgres()
def test_two_servers_on_one_postgresql_run_one_reconciler_and_the_other_takes_over_on_sigkill(
    postgres_url: str, tmp_path: Path
) -> None:
    # No execution runs: the servers register only the test operations.
    first = ServerProcess(postgres_url, tmp_path / "a" / "server.log", host_operations=False)
    second = ServerProcess(postgres_url, tmp_path / "b" / "server.log", host_operations=False)
    with running(first), running(second):
        wait_for(lambda: _leads(first) or _leads(second), timeout=60)
        leader, follower = (first, second) if _leads(first) else (second, first)
        [entry] = [e for e in leader.log() if e.get("leader")]
        assert entry["leader_tasks"] == ["reconciler", "pools"]
        # The follower keeps trying (every second here) and never leads while the leader lives.
        with follower.client() as client:
            for _ in range(10):
                assert client.get("/v1/ping").status_code == 200
        assert not _leads(follower)

        killed_at = datetime.now(timezone.utc)
        leader.kill_everything()  # SIGKILL: no goodbye, the database drops its session
        wait_for(lambda: _leads(follower), timeout=60)
        [took_over] = [e for e in follower.log() if e.get("leader")]
        assert datetime.fromisoformat(took_over["time"]) >= killed_at
        [started] = [e for e in follower.log() if "address" in e]
        assert took_over["leader"] == started["server_id"]
