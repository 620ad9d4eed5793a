"""One run at a time per project: a lock in the state backend around create and destroy.

Pulumi locks one stack for one operation. A mapt create is several: read or make the
``spotOption-<project>`` choice, then ``up`` the host stack. Two CI jobs creating the
same project at once could both find no spot choice and each save their own. The
project lock makes the whole create (or destroy) one critical section.

Every lock has an owner: the holder writes a note (user, host, pid, operation, since,
plus a unique ``token``, its process identity and its lease), and only that owner
removes it:

- file backends: an OS file lock (``filelock``) on ``<backend>/.mapt/locks/<project>.lock``,
  and the note next to it in ``<project>.json``. The OS releases the lock when the
  holder dies, so it cannot go stale; a note a dead run left is replaced (with a
  warning naming that run) by the next holder, and a holder removes the note only
  while it still carries its own token.
- s3 backends: the note is the lock, ``<prefix>/.mapt/locks/<project>.json``, created
  with ``If-None-Match: *`` (S3 accepts exactly one such writer). Every later write
  and the delete are conditional on the ETag the owner last wrote (``If-Match``), so a
  run whose lock was broken or taken over can neither renew nor remove its successor's.
  While it runs, the holder renews its note every ``lease / 4`` seconds (30 s for the
  default two-minute lease) in a background thread.

An s3 lock is taken over, with a warning naming the old holder, when its holder is
provably gone or its lease expired:

- gone: the note was written on this host (same host name, boot id and pid
  namespace) by this user, and its pid no longer runs, or now runs a process that
  started at another time (``/proc/<pid>/stat`` start time: pid reuse). Where
  ``/proc`` is missing (macOS), this rule never applies and the lease decides;
- expired: the note was not rewritten for longer than the lease its holder wrote into
  it, by S3's clock (the ``Date`` of the answer minus the object's ``Last-Modified``),
  or, when S3 sends no ``Date``, by a waiter that watched the same ETag that long.
  Notes without a lease (written by an older mapt) never expire: ``--force-destroy``
  removes them.

The takeover itself is a write conditional on the stale note's ETag, so of two
waiters exactly one wins. ``break_project_lock`` (``--force-destroy``) removes even a
live lock, after saying whose it was and how old.

A holder whose renewal finds its note gone or rewritten by another run (or cannot
renew it for a whole lease) has lost the lock: it says so at once in a warning and the
``project_lock`` block raises ``StateLockedError`` when it ends, so the run never
reports success. Every file system or S3 failure while taking, renewing or releasing
the lock is a one-line ``MaptError`` naming the path or bucket and the reason.
"""

from __future__ import annotations

import dataclasses
import errno
import getpass
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapt.core import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    InputError,
    MaptError,
    OperationError,
    StateLockedError,
    aws_error,
    get_logger,
    make_private_dir,
    write_private_file,
)
from mapt.stacks._backend import Backend, resolve_backend, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_log = get_logger(__name__)

_LOCKS_DIR = ".mapt/locks"
# How often a waiting run asks S3 again.
S3_POLL_SECONDS = 2.0
# How long an s3 lock outlives its holder's last renewal; the holder renews four
# times per lease, so a few slow or failed renewals do not lose it.
LEASE_SECONDS = 120.0
RENEWALS_PER_LEASE = 4
# How often break_project_lock re-reads a lock that changed under it before giving up.
_BREAK_ATTEMPTS = 5


# S3 answers to a conditional write or delete whose condition did not hold: the
# object changed (412), is gone (404 on If-Match), or another conditional write is in
# flight (409).
_LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "404")


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project lock, from the note the holder wrote.

    ``token`` is unique per acquisition: what makes a note its owner's. ``process``
    identifies the holder's process on its host (``<boot id>:<pid namespace>/<start
    ticks>``, empty where ``/proc`` is missing), so a dead holder is told from a
    reused pid. ``lease`` is how many seconds the note stays valid after its last
    write (``renewed``); 0 for notes of an older mapt, which never expire.
    """

    user: str
    host: str
    pid: int
    operation: str
    since: str  # UTC ISO-8601
    token: str = ""
    process: str = ""
    lease: float = 0.0
    renewed: str = ""  # UTC ISO-8601 of the last renewal, empty before the first
    renewals: int = 0

    @classmethod
    def me(cls, operation: str, lease: float = LEASE_SECONDS) -> LockHolder:
        return cls(
            user=current_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            operation=operation,
            since=_utc_now(),
            token=secrets.token_hex(16),
            process=_process_identity(os.getpid()) or "",
            lease=lease,
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

    def renewed_now(self) -> LockHolder:
        """This note as its next renewal writes it (new content, so a new ETag)."""
        return dataclasses.replace(self, renewed=_utc_now(), renewals=self.renewals + 1)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()


@contextmanager
def project_lock(
    backend_url: str | None,
    project: str,
    *,
    operation: str,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    lease: float = LEASE_SECONDS,
    renew_every: float | None = None,
) -> Iterator[LockHolder]:
    """Hold ``project``'s lock for the block; wait up to ``timeout`` seconds for it.

    Raises ``StateLockedError`` (exit 3) naming the holder when it stays taken, and
    when the block ends after another run broke or took over the lock (s3). ``sleep``
    and ``clock`` pace the wait; ``lease`` and ``renew_every`` (default ``lease / 4``)
    set the s3 lease this holder writes and how often its thread renews it.
    """
    every = lease / RENEWALS_PER_LEASE if renew_every is None else renew_every
    if not 0 < every < lease:
        raise InputError(
            f"lock renewal every {every:g} s does not fit the lease of {lease:g} s",
            hint="Renew more often than the lease lasts.",
        )
    backend = resolve_backend(backend_url)
    me = LockHolder.me(operation, lease)
    if backend.kind == "file":
        with _file_lock(backend, project, me, timeout):
            yield me
    else:
        with _s3_lock(_S3LockObject(backend, project), project, me, timeout, sleep, clock, every):
            yield me


def break_project_lock(backend_url: str | None, project: str) -> LockHolder | None:
    """Remove a project's lock, even a live one's; return whose it was (None: no lock).

    On s3 the lock object is deleted (conditionally on the ETag just read, so a
    holder's renewal in between is read again rather than lost). On a file backend
    the OS lock of a live run cannot be broken: then nothing is removed, a warning
    names the holder and None is returned, so the caller waits for it like any
    run; a note a dead run left is removed and its holder returned.
    """
    backend = resolve_backend(backend_url)
    if backend.kind == "file":
        return _break_file_lock(backend, project)
    lock = _S3LockObject(backend, project)
    for _ in range(_BREAK_ATTEMPTS):
        seen = lock.read()
        if seen is None:
            return None
        if lock.delete(seen.etag):
            if seen.holder is None:
                _log.warning("removed the unreadable project lock %s", lock.where)
            return seen.holder
    raise StateLockedError(
        f"the project lock {lock.where} changed {_BREAK_ATTEMPTS} times while removing it",
        hint="Its holder is alive and renewing it; stop that run first.",
    )


def _locked(project: str, holder: LockHolder | None, timeout: float, hint: str) -> StateLockedError:
    who = holder.describe() if holder else "another run (it left no note)"
    return StateLockedError(
        f"project {project!r} is locked by {who}; waited {timeout:g} s", hint=hint
    )


def _lost(project: str, operation: str, reason: str) -> StateLockedError:
    return StateLockedError(
        f"this {operation} lost the lock of project {project!r} while it ran: {reason}",
        hint="Another run may have changed the project meanwhile; check it with "
        "'mapt aws host list' before running create or destroy again.",
    )


# -- file backends ------------------------------------------------------------------------

_FILE_WAIT_HINT = (
    "Retry when that run ends, or wait longer with --lock-timeout; a file backend's "
    "lock ends with the process holding it."
)


def _file_paths(backend: Backend, project: str) -> tuple[Path, Path]:
    assert backend.path is not None
    folder = backend.path / _LOCKS_DIR
    return folder / f"{project}.lock", folder / f"{project}.json"


@contextmanager
def _file_lock(backend: Backend, project: str, me: LockHolder, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock_path, note = _file_paths(backend, project)
    _private_folder(lock_path.parent)
    lock = FileLock(lock_path, timeout=timeout, mode=PRIVATE_FILE_MODE)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = _read_note(note)
        except MaptError:
            holder = None
        raise _locked(project, holder, timeout, _FILE_WAIT_HINT) from None
    except OSError as error:
        raise _file_error("take the project lock", lock_path, error) from error
    try:
        left = _read_note(note)
        if left is not None:
            _log.warning(
                "took over the project lock of %r from %s: its process ended without releasing it",
                project,
                left.describe(),
            )
        _write_private_file(note, me.to_json(), "write the project lock note")
        _log.debug("locked project %s (%s)", project, lock_path)
        try:
            yield
        except BaseException:
            try:
                _remove_own_note(note, me)
            except MaptError as error:
                _log.warning("%s", error)
            raise
        _remove_own_note(note, me)
    finally:
        lock.release()


def _break_file_lock(backend: Backend, project: str) -> LockHolder | None:
    from filelock import FileLock, Timeout

    lock_path, note = _file_paths(backend, project)
    if not lock_path.parent.is_dir():
        return None
    lock = FileLock(lock_path, timeout=0, mode=PRIVATE_FILE_MODE)
    try:
        lock.acquire()
    except Timeout:
        holder = _read_note(note)
        _log.warning(
            "the project lock of %r is held by a live run (%s): a file backend's lock "
            "ends with its process, so this run waits for it",
            project,
            holder.describe() if holder else "it left no note",
        )
        return None
    except OSError as error:
        raise _file_error("take the project lock", lock_path, error) from error
    try:
        holder = _read_note(note)  # nobody holds the OS lock: a dead run's leftover
        try:
            note.unlink(missing_ok=True)
        except OSError as error:
            raise _file_error("remove the project lock note", note, error) from error
        return holder
    finally:
        lock.release()


def _read_note(note: Path) -> LockHolder | None:
    try:
        return _parse_holder(note.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _file_error("read the project lock note", note, error) from error


def _remove_own_note(note: Path, me: LockHolder) -> None:
    """Remove the note if it still carries ``me``'s token; leave another run's alone."""
    current = _read_note(note)
    if current is None:
        return
    if current.token != me.token:
        _log.warning("left the project lock note %s of %s in place", note, current.describe())
        return
    try:
        note.unlink(missing_ok=True)
    except OSError as error:
        raise _file_error("remove the project lock note", note, error) from error


def _private_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents as 0700, whatever the umask.

    Folders that already exist are left as they are, except the lock folder itself
    and ``.mapt``, which mapt owns and tightens back to 0700.
    """
    try:
        make_private_dir(folder)
    except OSError as error:
        raise _file_error("create the project lock folder", folder, error) from error
    for path in (folder, folder.parent):
        # Best effort: if it cannot be tightened, taking the lock says why it fails.
        with suppress(OSError):
            info = path.stat()
            if info.st_mode & 0o077 and info.st_uid == os.geteuid():
                path.chmod(PRIVATE_DIR_MODE)


def _write_private_file(path: Path, data: bytes, doing: str) -> None:
    """Write ``path`` (mode 0600) under a temporary name and rename it into place."""
    try:
        write_private_file(path, data)
    except OSError as error:
        raise _file_error(doing, path, error) from error


def _file_error(doing: str, path: Path, error: OSError) -> OperationError:
    """``cannot <doing> <path>: No space left on device (ENOSPC)``, with what to do."""
    name = errno.errorcode.get(error.errno or 0, "")
    reason = f"{error.strerror or error}" + (f" ({name})" if name else "")
    if error.errno == errno.ENOSPC:
        hint = "Free space on that file system, or pass another --backed-url."
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "Make the state folder writable for this user, or pass another --backed-url."
    else:
        hint = None
    return OperationError(f"cannot {doing} {path}: {reason}", hint=hint)


# -- s3 backends --------------------------------------------------------------------------

_S3_WAIT_HINT = (
    "Retry when that run ends, wait longer with --lock-timeout, or, if that run is "
    "dead, remove its lock with 'mapt aws host destroy --force-destroy' (a dead run's "
    "lock is also taken over once its lease expires)."
)


@dataclass(frozen=True)
class _Seen:
    """The lock object as read: its note (None if unreadable), ETag and age."""

    holder: LockHolder | None
    etag: str
    age: float | None  # seconds since its last write by S3's clock; None without a Date


class _S3LockObject:
    """One project's lock object: conditional create, replace, read and delete."""

    def __init__(self, backend: Backend, project: str) -> None:
        assert backend.bucket is not None
        root = f"{backend.prefix}/{_LOCKS_DIR}" if backend.prefix else _LOCKS_DIR
        self.bucket = backend.bucket
        self.key = f"{root}/{project}.json"
        self.where = f"s3://{self.bucket}/{self.key}"
        self._client: S3Client = s3_client(backend)

    def create(self, holder: LockHolder) -> str | None:
        """Write ``holder``'s note if there is no lock; its ETag, or None if there is one."""
        answer = self._call(
            "take the project lock", self._client.put_object,
            Body=holder.to_json(), IfNoneMatch="*",
        )  # fmt: skip
        return None if answer is None else str(answer["ETag"])

    def replace(self, holder: LockHolder, etag: str) -> str | None:
        """Overwrite the note that has ``etag``; the new ETag, or None if it changed."""
        answer = self._call(
            "renew the project lock", self._client.put_object,
            Body=holder.to_json(), IfMatch=etag,
        )  # fmt: skip
        return None if answer is None else str(answer["ETag"])

    def delete(self, etag: str) -> bool:
        """Delete the note if it still has ``etag``; False if it changed or is gone."""
        answer = self._call("remove the project lock", self._client.delete_object, IfMatch=etag)
        return answer is not None

    def read(self) -> _Seen | None:
        """The current note, or None when there is no lock."""
        answer = self._call("read the project lock", self._client.get_object)
        if answer is None:
            return None
        body = answer["Body"].read()
        age = None
        date = answer["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
        if date:
            with suppress(TypeError, ValueError):
                age = (parsedate_to_datetime(date) - answer["LastModified"]).total_seconds()
        return _Seen(_parse_holder(body), str(answer["ETag"]), age)

    def _call(self, doing: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """``method`` on the lock object; None for a lost condition or a missing object."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(Bucket=self.bucket, Key=self.key, **kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _LOST_RACE:
                return None
            raise aws_error(error, doing=f"cannot {doing} {self.where}") from error
        except BotoCoreError as error:
            raise aws_error(error, doing=f"cannot {doing} {self.where}") from error


@contextmanager
def _s3_lock(
    lock: _S3LockObject,
    project: str,
    me: LockHolder,
    timeout: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    renew_every: float,
) -> Iterator[None]:
    etag = _acquire_s3(lock, project, me, timeout, sleep, clock)
    renewer = _Renewer(lock, me, etag, renew_every)
    renewer.start()
    try:
        yield
    except BaseException:
        # The block's own failure is what the caller must see; say what else went wrong.
        try:
            lost = _release_s3(lock, renewer)
        except MaptError as error:
            _log.warning("%s", error)
        else:
            if lost:
                _log.error("this %s lost the lock of project %r: %s", me.operation, project, lost)
        raise
    lost = _release_s3(lock, renewer)
    if lost:
        raise _lost(project, me.operation, lost)


def _acquire_s3(
    lock: _S3LockObject,
    project: str,
    me: LockHolder,
    timeout: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> str:
    """Create the lock, or take over a stale one, within ``timeout``; its ETag."""
    deadline = clock() + timeout
    watched: tuple[str, float] | None = None  # (ETag, when this run first saw it)
    while True:
        etag = lock.create(me)
        if etag is not None:
            return etag
        seen = lock.read()
        if seen is not None:
            if watched is None or watched[0] != seen.etag:
                watched = (seen.etag, clock())
            stale = _stale_reason(seen, clock() - watched[1])
            if stale is not None:
                etag = lock.replace(me, seen.etag)
                if etag is not None:
                    assert seen.holder is not None  # only a readable note can be stale
                    _log.warning(
                        "took over the project lock of %r from %s: %s",
                        project,
                        seen.holder.describe(),
                        stale,
                    )
                    return etag
        if clock() >= deadline:
            raise _locked(project, seen.holder if seen else None, timeout, _S3_WAIT_HINT)
        if seen is not None:  # else it was released meanwhile: try again at once
            sleep(S3_POLL_SECONDS)


def _stale_reason(seen: _Seen, watched_for: float) -> str | None:
    """Why the lock ``seen`` may be taken over (None: its holder may be alive)."""
    holder = seen.holder
    if holder is None:
        return None
    gone = _gone_reason(holder)
    if gone is not None:
        return gone
    if holder.lease <= 0:
        return None
    idle = max(seen.age or 0.0, watched_for)
    if idle > holder.lease:
        return f"its lease expired (not renewed for {idle:.0f} s; lease {holder.lease:g} s)"
    return None


def _release_s3(lock: _S3LockObject, renewer: _Renewer) -> str | None:
    """Stop renewing and delete the lock if it is still ours; why it was lost, if it was."""
    etag, lost = renewer.stop()
    if lost is not None:
        # Still ours if only the renewals failed; the delete is conditional either way.
        with suppress(MaptError):
            lock.delete(etag)
        return lost
    if lock.delete(etag):
        return None
    seen = lock.read()
    if seen is not None and seen.holder is not None and seen.holder.token == renewer.token:
        # Our last renewal reached S3 but its answer did not reach us.
        if lock.delete(seen.etag):
            return None
        seen = lock.read()
    return _taken_by(seen)


def _taken_by(seen: _Seen | None) -> str:
    if seen is None:
        return "it was removed (--force-destroy?)"
    if seen.holder is None:
        return "another run replaced it"
    return f"it was taken over by {seen.holder.describe()}"


class _Renewer(threading.Thread):
    """Rewrites the holder's note every ``every`` seconds, conditionally on its ETag.

    A renewal that finds the note gone or another run's stops renewing and records
    why (``lost``); so do failed renewals that last a whole lease, since by then a
    waiter may rightly have taken the lock over. Transient failures before that are
    retried at the next renewal.
    """

    def __init__(self, lock: _S3LockObject, holder: LockHolder, etag: str, every: float) -> None:
        super().__init__(name=f"mapt-lock-renewal {lock.where}", daemon=True)
        self.token = holder.token
        self.lost: str | None = None
        self._lock = lock
        self._holder = holder
        self._etag = etag
        self._every = every
        self._stopping = threading.Event()

    def run(self) -> None:
        last_renewal = time.monotonic()
        while not self._stopping.wait(self._every):
            attempt = time.monotonic()
            try:
                self._renew()
            except MaptError as error:
                if time.monotonic() - last_renewal >= self._holder.lease:
                    self.lost = f"could not renew it for a whole lease ({error.message})"
                else:
                    _log.warning("%s; retrying in %g s", error.message, self._every)
                    continue
            if self.lost is not None:
                _log.warning("lost the project lock %s: %s", self._lock.where, self.lost)
                return
            last_renewal = attempt

    def _renew(self) -> None:
        holder = self._holder.renewed_now()
        etag = self._lock.replace(holder, self._etag)
        if etag is None:
            seen = self._lock.read()
            if seen is None or seen.holder is None or seen.holder.token != self.token:
                self.lost = _taken_by(seen)
                return
            # An earlier renewal reached S3 unanswered: the note is ours, go on from it.
            etag = self._lock.replace(holder, seen.etag)
            if etag is None:
                self.lost = _taken_by(self._lock.read())
                return
        self._holder, self._etag = holder, etag

    def stop(self) -> tuple[str, str | None]:
        """Stop renewing; the ETag last written and why the lock was lost (or None)."""
        self._stopping.set()
        self.join()
        return self._etag, self.lost


# -- the holder's identity ----------------------------------------------------------------


def _gone_reason(holder: LockHolder) -> str | None:
    """Why ``holder``'s process provably no longer runs (None: it may be running).

    Only a note this user wrote on this host, in this boot and pid namespace, can be
    checked: anywhere else the same pid is another process, or invisible.
    """
    machine = _machine_identity()
    if (
        machine is None
        or not holder.process
        or holder.host != socket.gethostname()
        or holder.user != current_user()
    ):
        return None
    noted_machine, _, noted_start = holder.process.rpartition("/")
    if noted_machine != machine:
        return None
    try:
        start = _start_ticks(holder.pid)
    except OSError:
        return None  # cannot tell
    if start is None:
        return f"its process (pid {holder.pid}) no longer runs on this host"
    if start != noted_start:
        return f"pid {holder.pid} is now another process on this host"
    return None


def _process_identity(pid: int) -> str | None:
    """``<boot id>:<pid namespace>/<start ticks>`` of ``pid``; None without ``/proc``."""
    machine = _machine_identity()
    if machine is None:
        return None
    try:
        start = _start_ticks(pid)
    except OSError:
        return None
    return None if start is None else f"{machine}/{start}"


def _machine_identity() -> str | None:
    """This kernel boot and pid namespace (Linux), where pids and start times mean the same."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}:{namespace}"


def _start_ticks(pid: int) -> str | None:
    """When ``pid`` started (clock ticks after boot), None if no such process runs.

    Field 22 of ``/proc/<pid>/stat``; the command name before it is in parentheses
    and may itself contain spaces and parentheses, so fields are counted after the
    last ``)``. Other read errors raise ``OSError``: then nothing can be told.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20:
        raise OSError(errno.EINVAL, f"unexpected /proc/{pid}/stat")
    if fields[0] == "Z":  # a zombie has ended; only its exit status is left
        return None
    return fields[19]


def _parse_holder(data: bytes) -> LockHolder | None:
    try:
        fields = json.loads(data)
        return LockHolder(
            user=str(fields["user"]),
            host=str(fields["host"]),
            pid=int(fields["pid"]),
            operation=str(fields["operation"]),
            since=str(fields["since"]),
            token=str(fields.get("token", "")),
            process=str(fields.get("process", "")),
            lease=float(fields.get("lease", 0.0)),
            renewed=str(fields.get("renewed", "")),
            renewals=int(fields.get("renewals", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def current_user() -> str:
    """This process's user name for lock notes; ``uid<N>`` for a uid without a passwd
    entry (a container's arbitrary uid), where ``getpass.getuser`` raises."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"
