"""Executions, the unit of all work: durable rows that workers claim, run and finish.

Every change the service makes is an execution: a row with an id, the operation's
``name`` (``hosts.create``), its ``target`` (the host it acts on), its arguments, and a
``status`` that moves pending -> running -> succeeded | failed | cancelled. The row is
the source of truth, so work survives a server's death:

- A worker claims the oldest pending execution whose target has none running (on
  PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so servers never wait on each other). A
  unique index on running rows per target lets the database itself refuse a second
  running operation on a target, whichever server tries.
- Each claim has its own id; every later write of the worker names it, so a worker that
  lost its claim cannot record anything.
- The worker's heartbeat says it is alive. A running execution whose heartbeat is
  older than the lease has lost its worker: it goes back to pending when its operation
  is resumable (Pulumi ``up`` and ``destroy`` are idempotent) and it has attempts
  left, else it fails with the reason. It is never run by two workers at once.
- A worker stopped by its server's shutdown hands its execution back to pending.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from mapt._api import ExecutionStatus as ExecutionStatus  # the API's, shared with the client
from mapt.core import ExitCode, MaptError, redact
from mapt.service._database import Database
from mapt.service._errors import ConflictError, NotFoundError
from mapt.service._schema import execution_logs, executions

# How many times a resumable execution is started before a lost worker fails it.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class ExecutionError:
    """Why an execution failed: the error's class, its message, the CLI's exit code."""

    type: str
    message: str
    exit_code: int

    @classmethod
    def of(cls, error: MaptError) -> ExecutionError:
        """A domain error as stored (executions, hosts) and logged: registered secrets
        masked, as a domain error's message may quote what it was handed."""
        return cls(
            type=type(error).__name__, message=redact(str(error)), exit_code=int(error.exit_code)
        )

    @classmethod
    def of_any(cls, error: Exception) -> ExecutionError:
        """``of`` a domain error; any other exception (a bug, an error nothing translated)
        is an ``InternalError`` naming its class and message, registered secrets masked."""
        if isinstance(error, MaptError):
            return cls.of(error)
        return cls(
            "InternalError", redact(f"{type(error).__name__}: {error}"), int(ExitCode.FAILED)
        )


@dataclass(frozen=True)
class Execution:
    id: str
    name: str
    target: str
    status: ExecutionStatus
    arguments: Mapping[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: ExecutionError | None
    result: Any
    attempts: int
    cancel_requested: bool
    claim: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The execution as the API shows it (arguments and ownership are not shown)."""
        return {
            "id": self.id,
            "name": self.name,
            "target": self.target,
            "status": self.status.value,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": None if self.error is None else self.error.__dict__.copy(),
            "result": self.result,
            "attempts": self.attempts,
            "cancel_requested": self.cancel_requested,
        }


# The level of a line an operation printed that is not a log record (Pulumi's
# progress, a traceback): shown as printed, where a record shows as the CLI logs it.
OUTPUT_LEVEL = "OUTPUT"
# The prefix mapt's log format gives a record on stderr (``mapt: INFO: ...``).
_RECORD_PREFIX = re.compile(r"mapt: (DEBUG|INFO|WARNING|ERROR|CRITICAL): ")


def split_record(printed: str) -> tuple[str, str]:
    """A printed line as (level, message): a mapt log record loses its prefix; any
    other line is ``OUTPUT`` as it is."""
    matched = _RECORD_PREFIX.match(printed)
    if matched is None:
        return OUTPUT_LEVEL, printed
    return matched.group(1), printed[matched.end() :]


@dataclass(frozen=True)
class LogLine:
    """One line of an execution's log: its level as a field, its message without it."""

    line: int
    at: datetime
    level: str
    message: str

    @property
    def text(self) -> str:
        """The line as the CLI would print it: ``mapt: LEVEL: message``, or as printed."""
        if self.level == OUTPUT_LEVEL:
            return self.message
        return f"mapt: {self.level}: {self.message}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _held(execution_id: str, claim: str) -> sa.ColumnElement[bool]:
    """The row of a running execution whose worker still holds ``claim``: a worker's
    writes name it, so one that lost its claim changes nothing."""
    return sa.and_(
        executions.c.id == execution_id,
        executions.c.claim == claim,
        executions.c.status == "running",
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _execution(row: sa.Row[Any]) -> Execution:
    m = row._mapping
    error = None
    if m["error_type"] is not None:
        error = ExecutionError(m["error_type"], m["error_message"], m["error_exit_code"])
    return Execution(
        id=m["id"],
        name=m["name"],
        target=m["target"],
        status=ExecutionStatus(m["status"]),
        arguments=m["arguments"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        error=error,
        result=m["result"],
        attempts=m["attempts"],
        cancel_requested=bool(m["cancel_requested"]),
        claim=m["claim"],
    )


class Executions:
    """The executions table: what routers, workers and the dispatcher read and write."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- what the API does ---------------------------------------------------------

    def submit(self, name: str, target: str, arguments: Mapping[str, Any]) -> Execution:
        """A new pending execution of operation ``name`` on ``target``."""
        with self.database.transaction() as connection:
            execution_id = self.submit_in(connection, name, target, arguments)
        return self.get(execution_id)

    def submit_in(
        self, connection: sa.Connection, name: str, target: str, arguments: Mapping[str, Any]
    ) -> str:
        """``submit`` inside the caller's transaction (with the record it changes); the id."""
        execution_id = f"ex-{secrets.token_hex(8)}"
        connection.execute(
            executions.insert().values(
                id=execution_id,
                name=name,
                target=target,
                status=ExecutionStatus.PENDING.value,
                arguments=dict(arguments),
                created_at=_now(),
                attempts=0,
                cancel_requested=False,
            )
        )
        self._append_log(connection, execution_id, "INFO", f"{name} on {target} submitted")
        return execution_id

    def get(self, execution_id: str) -> Execution:
        with self.database.transaction() as connection:
            row = connection.execute(
                sa.select(executions).where(executions.c.id == execution_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no execution has the id {execution_id!r}")
        return _execution(row)

    def find(
        self, *, include_completed: bool = False, target: str | None = None
    ) -> list[Execution]:
        """Pending and running executions (all with ``include_completed``), oldest first."""
        query = sa.select(executions).order_by(executions.c.seq)
        if not include_completed:
            query = query.where(
                executions.c.status.in_(
                    [ExecutionStatus.PENDING.value, ExecutionStatus.RUNNING.value]
                )
            )
        if target is not None:
            query = query.where(executions.c.target == target)
        with self.database.transaction() as connection:
            return [_execution(row) for row in connection.execute(query)]

    @staticmethod
    def find_in(connection: sa.Connection, execution_ids: Iterable[str]) -> list[Execution]:
        """The executions ``execution_ids``, inside the caller's transaction."""
        query = sa.select(executions).where(executions.c.id.in_(list(execution_ids)))
        return [_execution(row) for row in connection.execute(query)]

    def cancel(self, execution_id: str) -> Execution:
        """Cancel a pending execution now; ask a running one's worker to stop.

        A finished execution cannot be cancelled (``ConflictError``). A pending one's
        operation never runs to settle its host: the caller has ``Hosts.settle_abandoned``
        do it.
        """
        now = _now()
        with self.database.transaction() as connection:
            row = connection.execute(
                sa.select(executions).where(executions.c.id == execution_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no execution has the id {execution_id!r}")
            execution = _execution(row)
            if execution.status.finished:
                raise ConflictError(
                    f"execution {execution_id} already {execution.status.value}: "
                    "there is nothing to cancel"
                )
            # A worker may claim it between the read and this write: then it is running
            # and its worker is asked to stop, as for one found running.
            cancelled_pending = (
                execution.status is ExecutionStatus.PENDING
                and connection.execute(
                    executions.update()
                    .where(executions.c.id == execution_id, executions.c.status == "pending")
                    .values(status="cancelled", finished_at=now, cancel_requested=True)
                ).rowcount
                == 1
            )
            if cancelled_pending:
                self._append_log(connection, execution_id, "INFO", "cancelled before it started")
            else:
                connection.execute(
                    executions.update()
                    .where(executions.c.id == execution_id)
                    .values(cancel_requested=True)
                )
                self._append_log(
                    connection, execution_id, "INFO", "cancel requested; stopping at a safe point"
                )
        return self.get(execution_id)

    def log(self, execution_id: str, *, after: int = 0) -> list[LogLine]:
        """The execution's log lines after line number ``after``, in order."""
        self.get(execution_id)
        query = (
            sa.select(execution_logs)
            .where(execution_logs.c.execution_id == execution_id, execution_logs.c.line > after)
            .order_by(execution_logs.c.line)
        )
        with self.database.transaction() as connection:
            return [
                LogLine(row.line, row.at, row.level, row.message)
                for row in connection.execute(query)
            ]

    # -- what workers do -----------------------------------------------------------

    def claim(self, server_id: str, names: Iterable[str]) -> Execution | None:
        """Take the oldest runnable pending execution of one of ``names``, or None.

        Runnable: no execution of its target is running and none older is pending.
        The caller starts its worker and records the pid with ``started``.
        """
        other = executions.alias("other")
        query = (
            sa.select(executions.c.id)
            .where(
                executions.c.status == "pending",
                executions.c.name.in_(list(names)),
                ~sa.exists().where(
                    other.c.target == executions.c.target,
                    sa.or_(
                        other.c.status == "running",
                        sa.and_(other.c.status == "pending", other.c.seq < executions.c.seq),
                    ),
                ),
            )
            .order_by(executions.c.seq)
            .limit(1)
        )
        if not self.database.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=executions)
        claim = secrets.token_hex(8)
        now = _now()
        try:
            with self.database.transaction() as connection:
                found = connection.execute(query).first()
                if found is None:
                    return None
                updated = connection.execute(
                    executions.update()
                    .where(executions.c.id == found.id, executions.c.status == "pending")
                    .values(
                        status="running",
                        claim=claim,
                        server_id=server_id,
                        worker_pid=None,
                        heartbeat_at=now,
                        started_at=sa.func.coalesce(executions.c.started_at, now),
                        attempts=executions.c.attempts + 1,
                    )
                )
                if updated.rowcount != 1:
                    return None
                self._append_log(connection, found.id, "INFO", f"claimed by server {server_id}")
        except sa.exc.IntegrityError:
            # Another server started an execution on the same target first.
            return None
        return self.get(found.id)

    def started(self, execution_id: str, claim: str, pid: int) -> None:
        with self.database.transaction() as connection:
            connection.execute(
                executions.update()
                .where(executions.c.id == execution_id, executions.c.claim == claim)
                .values(worker_pid=pid)
            )

    def heartbeat(self, execution_id: str, claim: str) -> tuple[bool, bool]:
        """Record that the worker lives: (it still holds the claim, cancel is asked)."""
        with self.database.transaction() as connection:
            updated = connection.execute(
                executions.update()
                .where(_held(execution_id, claim))
                .values(heartbeat_at=_now())
                .returning(executions.c.cancel_requested)
            ).first()
        if updated is None:
            return False, False
        return True, bool(updated.cancel_requested)

    def keep_alive(self, server_id: str, execution_ids: Iterable[str]) -> None:
        """Beat for this server's live worker processes (also while they start up)."""
        identifiers = list(execution_ids)
        if not identifiers:
            return
        with self.database.transaction() as connection:
            connection.execute(
                executions.update()
                .where(
                    executions.c.id.in_(identifiers),
                    executions.c.server_id == server_id,
                    executions.c.status == "running",
                )
                .values(heartbeat_at=_now())
            )

    def succeed(self, execution_id: str, claim: str, result: Any) -> bool:
        return self._finish(
            execution_id, claim, ExecutionStatus.SUCCEEDED, result=result, message="succeeded"
        )

    def fail(self, execution_id: str, claim: str, error: ExecutionError) -> bool:
        return self._finish(
            execution_id,
            claim,
            ExecutionStatus.FAILED,
            error=error,
            message=f"failed: {error.message}",
        )

    def cancelled(self, execution_id: str, claim: str, error: ExecutionError) -> bool:
        return self._finish(
            execution_id, claim, ExecutionStatus.CANCELLED, error=error, message="cancelled"
        )

    def release(self, execution_id: str, claim: str, reason: str) -> bool:
        """Hand a running execution back to pending (its worker stops before the end)."""
        with self.database.transaction() as connection:
            updated = connection.execute(
                executions.update()
                .where(_held(execution_id, claim))
                .values(status="pending", claim=None, worker_pid=None, heartbeat_at=None)
            )
            if updated.rowcount != 1:
                return False
            self._append_log(connection, execution_id, "WARNING", f"{reason}; it will resume")
        return True

    def append_log(self, execution_id: str, level: str, message: str) -> None:
        with self.database.transaction() as connection:
            self._append_log(connection, execution_id, level, message)

    def _finish(
        self,
        execution_id: str,
        claim: str,
        status: ExecutionStatus,
        *,
        message: str,
        result: Any = None,
        error: ExecutionError | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": _now(),
            "result": result,
            "claim": None,
            "heartbeat_at": None,
        }
        if error is not None:
            values.update(
                error_type=error.type,
                error_message=error.message,
                error_exit_code=error.exit_code,
            )
        with self.database.transaction() as connection:
            updated = connection.execute(
                executions.update().where(_held(execution_id, claim)).values(**values)
            )
            if updated.rowcount != 1:
                return False
            level = "INFO" if status is ExecutionStatus.SUCCEEDED else "ERROR"
            self._append_log(connection, execution_id, level, message)
        return True

    # -- what the dispatcher does --------------------------------------------------

    def recover(
        self,
        *,
        lease: timedelta,
        resumable: Iterable[str],
        reason: str = "its worker stopped sending heartbeats",
        execution_id: str | None = None,
        claim: str | None = None,
    ) -> list[Execution]:
        """Resume or fail running executions whose worker is gone.

        Without ``execution_id``: those whose heartbeat is older than ``lease``. With
        it (and its ``claim``): that one, whose worker process is known to have ended.
        Returns what was changed; the hosts of those it failed are the caller's to settle
        (``Hosts.settle_abandoned``).
        """
        resumable = set(resumable)
        now = _now()
        query = sa.select(executions).where(executions.c.status == "running")
        if execution_id is not None:
            query = query.where(executions.c.id == execution_id, executions.c.claim == claim)
        else:
            query = query.where(executions.c.heartbeat_at < now - lease)
        changed: list[str] = []
        with self.database.transaction() as connection:
            for row in connection.execute(query).all():
                same_claim = (
                    executions.c.id == row.id,
                    executions.c.claim == row.claim,
                    executions.c.status == "running",
                )
                if row.name in resumable and row.attempts < MAX_ATTEMPTS:
                    values: dict[str, Any] = {
                        "status": "pending",
                        "claim": None,
                        "worker_pid": None,
                        "heartbeat_at": None,
                    }
                    line = f"{reason} (attempt {row.attempts}); it will resume"
                    level = "WARNING"
                else:
                    why = (
                        f"{reason}, after {row.attempts} attempts"
                        if row.name in resumable
                        else f"{reason}, and {row.name} cannot be resumed"
                    )
                    values = {
                        "status": "failed",
                        "finished_at": now,
                        "claim": None,
                        "heartbeat_at": None,
                        "error_type": "OperationError",
                        "error_message": why,
                        "error_exit_code": int(ExitCode.FAILED),
                    }
                    line = f"failed: {why}"
                    level = "ERROR"
                if connection.execute(
                    executions.update().where(*same_claim).values(**values)
                ).rowcount:
                    self._append_log(connection, row.id, level, line)
                    changed.append(row.id)
        return [self.get(identifier) for identifier in changed]

    @staticmethod
    def _append_log(connection: sa.Connection, execution_id: str, level: str, message: str) -> None:
        connection.execute(
            execution_logs.insert().values(
                execution_id=execution_id, at=_now(), level=level, message=message
            )
        )
