"""Running executions: one worker process per execution, fed by a dispatcher thread.

Why processes, not threads: Pulumi's Python runtime keeps process-wide state (the
mocks and monitor of ``pulumi.runtime``, the stack's configuration dictionary, the
environment the Automation API hands the CLI), and mapt stops a running Pulumi command
through the main thread's signal handlers (``mapt.core.cancellable``). A process per
execution gives each operation its own runtime, its own main thread for a clean
cancel, and a crash that takes down one execution instead of the server.
``tests/service/test_workers.py`` shows two concurrent executions do not see each
other's process-wide state.

Why a forkserver: a spawned process imports everything again (mapt, Pulumi's SDK,
pulumi_aws, boto3: seconds of CPU per execution). The workers are forked from a
multiprocessing ``forkserver``: a process started fresh (an exec, not a fork of the
threaded server) that imports the modules the operations declare (``Operation.preload``)
and the server's main module once, and then forks one worker per execution. Each worker
still starts from the forkserver's clean state (no execution ever runs in it, nothing of
an earlier execution's is in it), with the modules already imported.

The worker process, while its operation runs:
- sends a heartbeat every ``Timing.heartbeat`` seconds, and reads the cancel flag;
  at each beat it raises again a stop the operation's code caught and dropped;
- is kept alive by the dispatcher too, which beats for every live worker of its server
  (a worker's claim cannot expire while it imports its modules);
- on cancel, signals itself SIGINT: the operation stops at its next safe point (a
  Pulumi command is cancelled and saves its state) and the execution ends cancelled
  (no SIGINT when a stop is on its way already: that one ends it, recorded as
  cancelled; a second signal would cut a database transaction holding the stop);
- once its operation has returned, records it as succeeded, even if a stop comes then;
- when its server dies (the worker's end of a pipe only the server holds open, its
  lifeline, reads end of file) or stops, it stops the same way and hands the execution
  back to pending for the next server;
- stores every line it prints (mapt's log lines and Pulumi's progress, exactly what
  the CLI prints on stderr) as the execution's log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO, cast

from mapt.core import (
    Interrupted,
    MaptError,
    configure_logging,
    deliver_again,
    get_logger,
    raise_if_interrupted,
    redact,
    stop_pending,
)
from mapt.service._database import Database, open_database
from mapt.service._executions import (
    OUTPUT_LEVEL,
    Execution,
    ExecutionError,
    Executions,
    split_record,
)

_log = get_logger(__name__)
# The logger the server's log names for the lines its workers print.
_WORKER_LOGGER = "mapt.service.worker"


@dataclass(frozen=True)
class ExecutionContext:
    """What an operation gets: its execution, arguments, the services to act through,
    and the worker's connection to the service's database."""

    execution_id: str
    name: str
    target: str
    arguments: Mapping[str, Any]
    attempt: int
    services: Any
    database: Database = field(repr=False)


# An operation runs in a worker process: a module-level function, found by reference.
OperationFunction = Callable[[ExecutionContext], Any]


@dataclass(frozen=True)
class Operation:
    """A kind of execution: its name (``hosts.create``), its function, whether a run
    cut short may be started again (true for Pulumi ``up``/``destroy``), and the
    modules its function imports when it runs (``preload``), which the workers'
    forkserver imports once for every execution instead."""

    name: str
    run: OperationFunction
    resumable: bool = True
    preload: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timing:
    """How often workers beat, how long a silent one keeps its claim, how often the
    dispatcher looks for work, how long a stopping server waits for its workers, and
    how often a server tries to lead (the leader checks its lock as often)."""

    heartbeat: float = 5.0
    lease: float = 30.0
    poll: float = 1.0
    shutdown_grace: float = 120.0
    leader: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat < self.lease:
            raise ValueError("the heartbeat must be shorter than the lease")


@dataclass(frozen=True)
class _Job:
    """What a worker process is handed, through multiprocessing's pipe (never argv)."""

    database_url: str
    execution: Execution
    operation: Operation
    services: Any
    # The read end of a pipe whose write end only the server holds: end of file when
    # the server is gone (the worker's parent is the forkserver, not the server).
    lifeline: Any  # multiprocessing.connection.Connection
    # The write end of a pipe whose read end only the server holds: the worker keeps it
    # open until its process ends, however it ends (``_Worker.exited``).
    exited: Any  # multiprocessing.connection.Connection
    timing: Timing


def _execution_log(store: Executions, execution_id: str, echo: TextIO) -> TextIO:
    """The worker's stderr: each line goes to the execution's log and the server's.

    ``ProgressStream`` splits and redacts the lines, as it does for a library caller's
    progress. Both logs get one shape: the level as a field, the message without mapt's
    ``mapt: LEVEL:`` prefix (``split_record``); the server's is a JSON line like its own
    (``JsonLogFormatter``), naming the execution.
    """
    from mapt.hosts import ProgressStream
    from mapt.service._server import JsonLogFormatter

    formatter = JsonLogFormatter()

    def record(_level: str, line: str) -> None:
        level, message = split_record(line)
        try:
            store.append_log(execution_id, level, message)
        except Exception as error:  # the log must never stop the operation (a signal may)
            raise_if_interrupted()
            message = f"{message} (not stored in the execution's log: {error})"
        entry = logging.makeLogRecord(
            {
                "name": _WORKER_LOGGER,
                "levelname": level,
                "levelno": logging.getLevelName(level) if level != OUTPUT_LEVEL else logging.INFO,
                "msg": message,
                "execution_id": execution_id,
            }
        )
        echo.write(formatter.format(entry) + "\n")
        echo.flush()

    return cast(TextIO, ProgressStream(record))


class _Heartbeat(threading.Thread):
    """Beats for the claim; turns a cancel, a lost claim or a dead server into a signal.

    At each beat it also raises a stop again that the operation's code caught and
    dropped (``deliver_again``): the server sends its SIGTERM once, and a stop lost in a
    library that swallows exceptions would otherwise let the operation run on until the
    server's grace ends and it kills the worker, its end unrecorded.

    It signals the worker only while no stop is on its way: a further real signal
    would cut a database transaction that holds the stop (``uninterrupted``). A cancel
    that comes while the server's stop is pending is still recorded as a cancel.
    """

    def __init__(self, store: Executions, job: _Job) -> None:
        super().__init__(name="mapt-heartbeat", daemon=True)
        self._store = store
        self._job = job
        self._done = threading.Event()
        self.cancel_sent = False
        self.stop_reason: str | None = None

    def run(self) -> None:
        execution = self._job.execution
        while not self._done.wait(self._job.timing.heartbeat):
            deliver_again()
            if self._job.lifeline.poll():  # nothing is ever sent: end of file
                self._stop_self(signal.SIGTERM, "its server stopped")
                continue
            try:
                held, cancel = self._store.heartbeat(execution.id, execution.claim or "")
            except Exception as error:
                _log.warning("heartbeat of %s failed: %s", execution.id, error)
                continue
            if not held:
                self._stop_self(signal.SIGTERM, "another worker holds it now")
            elif cancel and not self.cancel_sent:
                self.cancel_sent = True
                self._signal_self(signal.SIGINT)

    def _stop_self(self, number: int, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self._signal_self(number)

    @staticmethod
    def _signal_self(number: int) -> None:
        if not stop_pending():
            os.kill(os.getpid(), number)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _work(job: _Job) -> None:
    """A worker process's body: run one execution and record how it ended."""
    execution = job.execution
    claim = execution.claim or ""
    os.dup(job.exited.fileno())  # open until the process ends, whatever closes the object
    database = open_database(job.database_url, migrate=False)
    store = Executions(database)
    sys.stderr = _execution_log(store, execution.id, sys.__stderr__ or sys.stderr)
    configure_logging()
    context = ExecutionContext(
        execution_id=execution.id,
        name=execution.name,
        target=execution.target,
        arguments=execution.arguments,
        attempt=execution.attempts,
        services=job.services,
        database=database,
    )
    heartbeat = _Heartbeat(store, job)
    heartbeat.start()
    from mapt.core import stopping_on_signals

    outcome: Callable[[], bool]
    returned: list[Any] = []  # the operation's result, kept by the call that returned it
    try:
        try:
            with stopping_on_signals():
                _log.info(
                    "%s on %s: attempt %d", execution.name, execution.target, execution.attempts
                )
                returned.append(job.operation.run(context))
        except Interrupted:
            if not returned:
                raise
            # A stop that comes once the operation has returned (a signal, or the
            # heartbeat raising a dropped stop again) does not undo the work it did.
        result = returned[0]
        json.dumps(result)  # a result the API cannot show is a bug of the operation
        outcome = lambda: store.succeed(execution.id, claim, result)  # noqa: E731
    except Interrupted as stopped:
        if heartbeat.cancel_sent:
            error = ExecutionError("Cancelled", "cancelled on request", int(stopped.exit_code))
            outcome = lambda: store.cancelled(execution.id, claim, error)  # noqa: E731
        else:
            reason = heartbeat.stop_reason or "its server is stopping"
            why = f"stopped by {signal.Signals(stopped.signal_number).name}: {reason}"
            outcome = lambda: store.release(execution.id, claim, why)  # noqa: E731
    except Exception as failure:
        if not isinstance(failure, MaptError):  # a bug: its traceback, for whoever fixes it
            sys.stderr.write(redact("".join(traceback.format_exception(failure))))
        failed = ExecutionError.of_any(failure)
        outcome = lambda: store.fail(execution.id, claim, failed)  # noqa: E731
    # Recording the end is short and must not be cut: signals wait until it is done.
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in _STOP_SIGNALS}
    try:
        heartbeat.stop()
        sys.stderr.flush()
        if not outcome():
            _log.warning("%s was no longer this worker's: its end is not recorded", execution.id)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        database.dispose()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _Worker:
    """A worker process, as its server sees it.

    Whether it still runs is read from ``exited``, never from ``process``: a worker is
    the forkserver's child, and multiprocessing learns its end (``is_alive``, ``join``,
    ``exitcode``) from the forkserver, which reports every worker ended, exit code 255,
    once it is gone itself (killed with the server's process group, out of memory);
    the workers run on. ``exited`` is the read end of a pipe whose write end only the
    worker holds (the forkserver closes its copies once it has forked): end of file
    when the worker's process is gone, whatever became of the forkserver.
    """

    execution: Execution
    process: Any  # multiprocessing.context.ForkServerProcess
    lifeline: Any  # the write end of the worker's lifeline, closed when it is reaped
    exited: Any  # multiprocessing.connection.Connection

    def ended(self) -> bool:
        return bool(self.exited.poll())  # nothing is ever sent: end of file

    def exit_code(self) -> str:
        """The exit code, as the forkserver reports it; ``unknown`` when it cannot."""
        self.process.join(_EXIT_CODE_WAIT)  # the forkserver reports it as it reaps
        code = self.process.exitcode
        if code is None:
            return "unknown: its forkserver did not report it"
        if code == _FORKSERVER_GONE:
            return "unknown: its forkserver is gone"
        return str(code)


# What multiprocessing reports as the exit code of a worker whose forkserver is gone
# (``popen_forkserver.Popen.poll``); no mapt worker exits with it.
_FORKSERVER_GONE = 255
# How long a reaped worker's exit code may take to come from its forkserver.
_EXIT_CODE_WAIT = 5.0


def _forkserver(operations: Mapping[str, Operation]) -> Any:
    """The multiprocessing context the workers start from: a forkserver that imports
    the server's main module (what a spawned worker imports first) and the modules the
    operations declare, in the order they declare them (a module may need to come
    before another's import). The list is taken when the forkserver starts (as the
    dispatcher starts); a process has one forkserver, so a second dispatcher in it
    shares it."""
    context = multiprocessing.get_context("forkserver")
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    first = [main.name] if main is not None and main.name != "__main__" else []
    declared = [module for operation in operations.values() for module in operation.preload]
    context.set_forkserver_preload(["__main__", *dict.fromkeys([*first, *declared])])
    return context


# The dispatchers of this process between start and stop: they share its forkserver.
_started: set[int] = set()
_started_lock = threading.Lock()


def _forkserver_ready() -> None:
    """Nothing: the first process forked, whose start returns once the forkserver has
    imported what it preloads."""


def _stop_forkserver() -> None:
    """Stop the forkserver and wait for it, so that a stopped server leaves no process
    behind and whoever waits for the server has waited for all of its processes (their
    CPU time counted, as it was for spawned workers). Only the last dispatcher of the
    process to stop does: the forkserver waits for every worker it started (each holds
    its "alive" pipe) and another dispatcher's still run. The standard library stops a
    forkserver only through its private ``_stop``; without it, the forkserver stops by
    itself once this process and its workers have ended."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)
    if stop is None:
        _log.debug("this Python's forkserver has no _stop: it ends with this process")
        return
    stop()


@dataclass
class Dispatcher:
    """Claims executions and runs each in a worker process, ``workers`` at a time."""

    store: Executions
    operations: Mapping[str, Operation]
    server_id: str
    workers: int = 2
    timing: Timing = field(default_factory=Timing)
    services: Any = None
    _running: dict[str, _Worker] = field(default_factory=dict)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _context: Any = None

    def start(self) -> None:
        with _started_lock:
            _started.add(id(self))
        self._context = _forkserver(self.operations)
        self._thread = threading.Thread(target=self._loop, name="mapt-dispatcher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now (a new execution was submitted)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; stop the workers (they hand their executions back); wait."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._signal_running(signal.SIGTERM)
        if self._wait_for_workers(self.timing.shutdown_grace):
            for worker in self._running.values():
                if not worker.ended():
                    _log.warning(
                        "worker of %s did not stop in %ss: killed",
                        worker.execution.id,
                        self.timing.shutdown_grace,
                    )
            self._signal_running(signal.SIGKILL)
            if self._wait_for_workers(_EXIT_CODE_WAIT):
                _log.warning("a killed worker's pipe is still open: a process it started holds it")
        self._reap(reason="the server stopped while it ran")
        with _started_lock:
            _started.discard(id(self))
            last = not _started
        if last:
            _stop_forkserver()

    def _signal_running(self, number: int) -> None:
        """Signal each worker still running, by its pid: multiprocessing sends no signal
        to a process it believes ended (``_Worker``)."""
        for worker in self._running.values():
            if not worker.ended():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, number)

    def _wait_for_workers(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every worker to end; whether any still runs."""
        deadline = time.monotonic() + timeout
        while waiting := [w.exited for w in self._running.values() if not w.ended()]:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            multiprocessing.connection.wait(waiting, left)
        return False

    def _loop(self) -> None:
        # Before the first claim, the forkserver's imports (seconds) are waited for: the
        # first start of a process blocks this thread until they are done, and a claim
        # made before that went unbeaten all that while, expired, and was run again by
        # another server. (``ensure_running`` alone returns before they are done.)
        try:
            ready = self._context.Process(target=_forkserver_ready, name="mapt-forkserver-ready")
            ready.start()
            ready.join()
        except Exception as error:  # the first worker's start tries again and says why
            _log.error("the workers' forkserver did not start: %s", redact(str(error)))
        lease = timedelta(seconds=self.timing.lease)
        resumable = [name for name, operation in self.operations.items() if operation.resumable]
        while not self._stopping.is_set():
            try:
                self._reap(reason="its worker process ended before recording the end")
                # A worker that is alive keeps its claim, even while it is still starting.
                self.store.keep_alive(self.server_id, self._running)
                recovered = self.store.recover(lease=lease, resumable=resumable)
                for lost in recovered:
                    _log.warning("execution %s lost its worker: now %s", lost.id, lost.status.value)
                self._settle_hosts(recovered)
                while len(self._running) < self.workers and not self._stopping.is_set():
                    execution = self.store.claim(self.server_id, self.operations)
                    if execution is None:
                        break
                    if execution.id in self._running:  # a claim must never get two workers
                        raise RuntimeError(f"{execution.id} was claimed again while it runs here")
                    self._spawn(execution)
            except Exception as error:  # the database may be away for a while
                _log.error("the dispatcher failed to look for work: %s", redact(str(error)))
            self._wake.wait(self.timing.poll)
            self._wake.clear()

    def _spawn(self, execution: Execution) -> None:
        lifeline, held = self._context.Pipe(duplex=False)
        exited, exiting = self._context.Pipe(duplex=False)
        job = _Job(
            database_url=self.store.database.url.render_as_string(hide_password=False),
            execution=execution,
            operation=self.operations[execution.name],
            services=self.services,
            lifeline=lifeline,
            exited=exiting,
            timing=self.timing,
        )
        process = self._context.Process(target=_work, args=(job,), name=f"mapt-{execution.id}")
        try:
            process.start()
        except BaseException:
            held.close()
            exited.close()
            raise
        finally:  # the worker has its own copies
            lifeline.close()
            exiting.close()
        self._running[execution.id] = _Worker(execution, process, held, exited)
        self.store.started(execution.id, execution.claim or "", process.pid or 0)
        _log.info(
            "execution %s (%s on %s) runs in worker process %s",
            execution.id,
            execution.name,
            execution.target,
            process.pid,
        )

    def _reap(self, *, reason: str) -> None:
        resumable = [name for name, operation in self.operations.items() if operation.resumable]
        for execution_id, worker in list(self._running.items()):
            if not worker.ended():
                continue
            code = worker.exit_code()
            worker.lifeline.close()
            worker.exited.close()
            del self._running[execution_id]
            recovered = self.store.recover(
                lease=timedelta(0),
                resumable=resumable,
                reason=f"{reason} (exit code {code})",
                execution_id=execution_id,
                claim=worker.execution.claim,
            )
            self._settle_hosts(recovered)

    def _settle_hosts(self, recovered: list[Execution]) -> None:
        """Once lost workers' executions failed, settle their hosts
        (``Hosts.settle_abandoned``): their operations will not; a cut-short create's
        cleanup is claimed at the next look for work."""
        if any(execution.status.finished for execution in recovered):
            from mapt.service._hosts import Hosts  # it builds on this module

            if Hosts(self.store.database, self.store).settle_abandoned():
                self._wake.set()
