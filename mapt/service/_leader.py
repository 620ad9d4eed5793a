"""Leadership: of the servers sharing a database, one at a time runs the leader-only loops.

Some work must be done by one server only, however many share the records: comparing
hosts with AWS (the reconciler), converging pools. Such a loop is a ``LeaderTask``:
a name, an interval in seconds, and a function of a ``LeaderContext``. The server runs
every task while it is the leader, each in its own thread: at once when it becomes
leader, then every ``interval`` seconds, until it stops leading. A task that raises is
logged and run again at its next interval; it never stops the server or the others.

How to register a loop: write a module-level function taking the ``LeaderContext``,
and add a ``LeaderTask`` for it to the tuple ``mapt.service._server.leader_tasks``
returns (a test or an embedding program may pass its own tuple to ``run_server``'s
``leader_tasks`` instead)::

    def converge_pools(context: LeaderContext) -> None:
        for pool in ...:
            if not context.leading():
                return  # leadership was lost midway: stop, the new leader goes on
            ...         # read and change records through context.database;
        context.submitted()  # after submitting executions: wake the dispatcher

    LeaderTask("pools", interval=30.0, run=converge_pools)

A task changes records only with conditional writes (``UPDATE ... WHERE state = ...``)
or by submitting executions, never on the belief that it alone runs: leadership moves
when a connection is lost, and a task already in its body finishes that pass.

Who leads:

- PostgreSQL: the server that holds a session-level advisory lock
  (``pg_try_advisory_lock``) on a connection of its own. The lock lives as long as that
  connection: when the server dies (even by SIGKILL) or the connection is lost, the
  database releases it and another server takes it at its next try (every
  ``retry`` seconds). The leader checks its connection as often; a failed check is
  leadership lost: the loops are told to stop, and the server tries again to lead.
- SQLite: one server per database file (``server_lock`` refuses a second), so that
  server leads for its whole life.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from mapt.core import get_logger, redact
from mapt.service._database import Database

_log = get_logger(__name__)

# The PostgreSQL advisory lock the leader holds (distinct from the migrations' lock).
LEADER_LOCK = 0x6D617074_6C656164  # "mapt" "lead"
# How the leader's connection is named in pg_stat_activity.
LEADER_APPLICATION = "mapt-leader"
# How often a follower tries to lead, and the leader checks its connection (seconds).
DEFAULT_LEADER_RETRY = 5.0


@dataclass(frozen=True)
class LeaderContext:
    """What a leader-only task acts with: the records, the host services, its server.

    ``leading()`` says whether this server still leads (check it between steps);
    ``submitted()`` wakes the dispatcher after the task submitted executions.
    """

    database: Database
    services: Any
    server_id: str
    leading: Callable[[], bool]
    submitted: Callable[[], None]


@dataclass(frozen=True)
class LeaderTask:
    """A loop only the leader runs: ``run(context)`` every ``interval`` seconds."""

    name: str
    interval: float
    run: Callable[[LeaderContext], None]

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"leader task {self.name!r}: interval {self.interval} must be > 0")


@dataclass
class Leadership:
    """Takes and keeps leadership for a server, and runs ``tasks`` while it leads."""

    database: Database
    tasks: Sequence[LeaderTask]
    server_id: str
    services: Any = None
    submitted: Callable[[], None] = lambda: None
    retry: float = DEFAULT_LEADER_RETRY
    _stopping: threading.Event = field(default_factory=threading.Event)
    # Set while this server leads; a new one for each term, set again when it ends.
    _term: threading.Event | None = None
    _thread: threading.Thread | None = None
    _task_threads: list[threading.Thread] = field(default_factory=list)
    _connection: sa.Connection | None = None
    _engine: sa.Engine | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mapt-leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop leading: the tasks end their pass, the lock is released."""
        self._stopping.set()
        if self._term is not None:
            self._term.set()
        if self._thread is not None:
            self._thread.join()
        self._step_down("the server stops")

    def leading(self) -> bool:
        """Whether this server leads now (and is not stopping)."""
        term = self._term
        return term is not None and not term.is_set() and not self._stopping.is_set()

    # -- taking and keeping the lock -------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._term is None:
                    if self._acquire():
                        self._lead()
                elif not self._still_held():
                    self._step_down("its connection to the database was lost")
            except Exception as error:  # the database may be away for a while
                _log.error("leadership check failed: %s", redact(str(error)))
                if self._term is not None:
                    self._step_down(f"the check failed ({redact(str(error))})")
            self._stopping.wait(self.retry)

    def _acquire(self) -> bool:
        if self.database.is_sqlite:
            return True  # the server lock made this the only server on the file
        self._close()
        self._engine = sa.create_engine(
            self.database.url,
            poolclass=sa.NullPool,
            connect_args={"application_name": f"{LEADER_APPLICATION} {self.server_id}"[:63]},
        )
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._connection = connection
        held = bool(
            connection.execute(sa.select(sa.func.pg_try_advisory_lock(LEADER_LOCK))).scalar()
        )
        if not held:
            self._close()
        return held

    def _still_held(self) -> bool:
        if self.database.is_sqlite:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(sa.select(1))
        except sa.exc.DBAPIError:
            return False
        return True

    def _close(self) -> None:
        connection, engine = self._connection, self._engine
        self._connection, self._engine = None, None
        if connection is not None:
            # Closing the session releases the advisory lock; a connection already lost
            # took the lock with it.
            with contextlib.suppress(sa.exc.DBAPIError):
                connection.close()
        if engine is not None:
            engine.dispose()

    # -- running the tasks -----------------------------------------------------------

    def _lead(self) -> None:
        term = threading.Event()
        self._term = term
        names = ", ".join(task.name for task in self.tasks) or "no task"
        _log.info(
            "server %s leads: runs %s",
            self.server_id,
            names,
            extra={"leader": self.server_id, "leader_tasks": [t.name for t in self.tasks]},
        )
        context = LeaderContext(
            database=self.database,
            services=self.services,
            server_id=self.server_id,
            leading=self.leading,
            submitted=self.submitted,
        )
        self._task_threads = [
            threading.Thread(
                target=self._run_task,
                args=(task, context, term),
                name=f"mapt-leader-{task.name}",
                daemon=True,
            )
            for task in self.tasks
        ]
        for thread in self._task_threads:
            thread.start()

    @staticmethod
    def _run_task(task: LeaderTask, context: LeaderContext, term: threading.Event) -> None:
        while not term.is_set():
            try:
                task.run(context)
            except Exception as error:
                _log.exception("leader task %s failed: %s", task.name, redact(str(error)))
            if term.wait(task.interval):
                return

    def _step_down(self, reason: str) -> None:
        term, self._term = self._term, None
        was_leading = term is not None
        if term is not None:
            term.set()
        # The tasks see leading() false at their next check, and end with their pass.
        for thread in self._task_threads:
            thread.join()
        self._task_threads = []
        self._close()
        if was_leading:
            _log.warning(
                "server %s no longer leads: %s",
                self.server_id,
                reason,
                extra={"leader_lost": self.server_id},
            )
