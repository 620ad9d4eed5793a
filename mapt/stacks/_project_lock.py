"""One run at a time per project: a lock in the state backend around create and destroy.

Pulumi locks one stack for one operation. A mapt create is several: read or make the
``spotOption-<project>`` choice, then ``up`` the host stack. Two CI jobs creating the
same project at once could both find no spot choice and each save their own. The
project lock makes the whole create (or destroy) one critical section:

- file backends: an OS file lock (``filelock``) on ``<backend>/.mapt/locks/<project>.lock``.
  The OS releases it when the holder dies, so it cannot go stale;
- s3 backends: ``<prefix>/.mapt/locks/<project>.json`` written with ``If-None-Match: *``,
  which S3 accepts for exactly one writer. A killed run leaves it behind:
  ``break_project_lock`` (``--force-destroy``) removes it after saying whose it was.

Either way a JSON note says who holds the lock (user, host, pid, operation, since),
so a run that gives up names the holder.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mapt.core import OperationError, StateLockedError, get_logger
from mapt.stacks._backend import Backend, resolve_backend, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_log = get_logger(__name__)

_LOCKS_DIR = ".mapt/locks"
# How often a waiting run asks S3 again.
S3_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project lock, from the note the holder wrote."""

    user: str
    host: str
    pid: int
    operation: str
    since: str  # UTC ISO-8601

    @classmethod
    def me(cls, operation: str) -> LockHolder:
        return cls(
            user=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            operation=operation,
            since=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def describe(self, now: datetime | None = None) -> str:
        """``create by runner@gh-7 (pid 4242), since 2026-11-22T08:00:00Z (12 min ago)``."""
        text = f"{self.operation} by {self.user}@{self.host} (pid {self.pid}), since {self.since}"
        try:
            started = datetime.fromisoformat(self.since.replace("Z", "+00:00"))
        except ValueError:
            return text
        minutes = int(((now or datetime.now(timezone.utc)) - started).total_seconds() // 60)
        return f"{text} ({max(minutes, 0)} min ago)"


@contextmanager
def project_lock(
    backend_url: str | None,
    project: str,
    *,
    operation: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[LockHolder]:
    """Hold ``project``'s lock for the block; wait up to ``timeout`` seconds for it.

    Raises ``StateLockedError`` (exit 3) naming the holder when it stays taken.
    """
    backend = resolve_backend(backend_url)
    me = LockHolder.me(operation)
    if backend.kind == "file":
        with _file_lock(backend, project, me, timeout):
            yield me
    else:
        with _s3_lock(backend, project, me, timeout, sleep, clock):
            yield me


def break_project_lock(backend_url: str | None, project: str) -> LockHolder | None:
    """Remove a lock left by a dead run; return whose it was (None when there was none).

    On a file backend only the note can be left behind (the OS lock dies with its
    process), so this removes the note; on s3 it removes the lock object itself.
    """
    backend = resolve_backend(backend_url)
    if backend.kind == "file":
        note = _file_paths(backend, project)[1]
        holder = _parse_holder(note.read_bytes()) if note.exists() else None
        note.unlink(missing_ok=True)
        return holder
    client, bucket, key = _s3_target(backend, project)
    holder = _s3_holder(client, bucket, key)
    if holder is not None:
        client.delete_object(Bucket=bucket, Key=key)
    return holder


def _locked(project: str, holder: LockHolder | None, timeout: float) -> StateLockedError:
    who = holder.describe() if holder else "another run (it left no note)"
    return StateLockedError(
        f"project {project!r} is locked by {who}; waited {timeout:g} s",
        hint="Retry when that run ends, wait longer with --lock-timeout, or, if that run "
        "is dead, remove its lock with 'mapt aws host destroy --force-destroy'.",
    )


# -- file backends ------------------------------------------------------------------------


def _file_paths(backend: Backend, project: str) -> tuple[Path, Path]:
    assert backend.path is not None
    folder = backend.path / _LOCKS_DIR
    return folder / f"{project}.lock", folder / f"{project}.json"


@contextmanager
def _file_lock(backend: Backend, project: str, me: LockHolder, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock_path, note = _file_paths(backend, project)
    try:
        lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise OperationError(f"cannot create {lock_path.parent}: {error.strerror}") from error
    lock = FileLock(lock_path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        holder = _parse_holder(note.read_bytes()) if note.exists() else None
        raise _locked(project, holder, timeout) from None
    try:
        note.write_text(json.dumps(asdict(me)), encoding="utf-8")
        _log.debug("locked project %s (%s)", project, lock_path)
        yield
    finally:
        note.unlink(missing_ok=True)
        lock.release()


# -- s3 backends --------------------------------------------------------------------------


def _s3_target(backend: Backend, project: str) -> tuple[S3Client, str, str]:
    assert backend.bucket is not None
    root = f"{backend.prefix}/{_LOCKS_DIR}" if backend.prefix else _LOCKS_DIR
    return s3_client(backend), backend.bucket, f"{root}/{project}.json"


@contextmanager
def _s3_lock(
    backend: Backend,
    project: str,
    me: LockHolder,
    timeout: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> Iterator[None]:
    from botocore.exceptions import ClientError

    client, bucket, key = _s3_target(backend, project)
    body = json.dumps(asdict(me)).encode()
    deadline = clock() + timeout
    while True:
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            break
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise OperationError(f"cannot lock s3://{bucket}/{key}: {code} {error}") from error
        if clock() >= deadline:
            raise _locked(project, _s3_holder(client, bucket, key), timeout)
        sleep(S3_POLL_SECONDS)
    try:
        yield
    finally:
        client.delete_object(Bucket=bucket, Key=key)


def _s3_holder(client: S3Client, bucket: str, key: str) -> LockHolder | None:
    from botocore.exceptions import ClientError

    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        return None
    return _parse_holder(body)


def _parse_holder(data: bytes) -> LockHolder | None:
    try:
        fields = json.loads(data)
        return LockHolder(
            user=str(fields["user"]),
            host=str(fields["host"]),
            pid=int(fields["pid"]),
            operation=str(fields["operation"]),
            since=str(fields["since"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"
