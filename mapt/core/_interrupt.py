"""Stopping on SIGINT and SIGTERM at a safe point, as an ``Interrupted`` error.

The CLI's signal handler calls ``stop(signal)``. Outside any operation that must not
be cut short, that raises ``Interrupted`` at once in the main thread, so the command
unwinds through its ``with`` blocks (the project lock is released on the way) and the
CLI prints one ``Error:`` line with exit 130 (SIGINT) or 143 (SIGTERM, what a cancelled
CI job sends). Inside a ``cancellable(cancel)`` block (a running Pulumi command) the
signal instead calls ``cancel``, which asks the operation to stop by itself (Pulumi
then finishes its in-flight resource operations and writes its state), and
``Interrupted`` is raised when the block ends. Further signals while the stop is being
cleaned up are logged and otherwise ignored, so a second Ctrl-C cannot cut the clean-up
short.

Because the handler raises wherever the main thread happens to be, the stop can land
inside code that catches ``Exception`` so as never to fail its caller: a log handler
(``logging`` swallows what its stream raises), or a sink storing a log line. Each such
``except`` calls ``raise_if_interrupted`` first, which also lets through an error that
replaced the stop in the code that ``except`` protects (a library's clean-up failing as
the stop unwinds through it), but never a failure of the clean-up of a stop that a
calling frame is handling (a log line that fails while a lock is released). Three
more guards keep a stop from being lost:

- Inside an ``uninterrupted()`` block (a database transaction: a query cut mid-way
  leaves the connection busy, the rollback then fails and replaces the stop, and the
  pool logs and drops that) the first signal raises nothing; its stop is raised when
  the block ends. A real second signal (a second Ctrl-C; a service worker's heartbeat
  sends none while a stop is on its way) raises it at once, cutting the block: a
  database that does not answer must not keep a command from stopping.
- A further signal while a stop is pending re-raises it when the main thread is no
  longer handling it (the code it landed in caught and dropped it); while the main
  thread is handling it (an ``except`` or ``finally`` cleaning up) it is only logged.
- ``deliver_again()``, for a thread that watches the main one (a service worker's
  heartbeat), does the same without a log line, so that the stop of a single SIGTERM
  is raised again until the main thread unwinds. Its simulated SIGTERM is marked as
  such: it never counts as a real second signal (a real SIGTERM that comes at the same
  instant is handled with it, once, as CPython merges pending signals of one number),
  and it is ignored once ``stopping_on_signals`` is leaving.

A block that returns normally while its stop is pending (the code it landed in dropped
it, and no signal raised it again before the block's work was done) ends normally: the
work it finished is not reported as interrupted.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mapt.core._errors import ExitCode, MaptError
from mapt.core._logging import get_logger

_log = get_logger(__name__)

Canceller = Callable[[int], None]


class Interrupted(MaptError):
    """The command was stopped by a signal (exit 130 for SIGINT)."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, signal_number: int, *, hint: str | None = None) -> None:
        super().__init__(f"interrupted by {signal.Signals(signal_number).name}", hint=hint)
        self.signal_number = signal_number

    @classmethod
    def for_signal(cls, signal_number: int) -> Interrupted:
        """The error for ``signal_number``: ``Terminated`` for SIGTERM."""
        if signal_number == signal.SIGTERM:
            return Terminated(signal_number)
        return Interrupted(signal_number)


class Terminated(Interrupted):
    """The command was stopped by SIGTERM (exit 143, as a shell reports a SIGTERM death)."""

    exit_code = ExitCode.TERMINATED


class _Stopping:
    """The signal received so far in this run, and the operations to cancel on one."""

    def __init__(self) -> None:
        self.pending: Interrupted | None = None
        self.cancellers: list[Canceller] = []
        # The main thread's depth of ``uninterrupted`` blocks, and the stop a signal
        # brought inside them, raised when the outermost ends.
        self.uninterrupted = 0
        self.held: Interrupted | None = None
        # Whether ``stopping_on_signals`` routes the signals to ``stop``, and the
        # signal ``deliver_again`` simulated that ``stop`` has not handled yet (a
        # real signal of another number must not take its mark). ``delivering``
        # makes a simulated signal and the handlers' restore exclusive.
        self.routed = False
        self.again: int | None = None
        self.delivering = threading.Lock()


_stopping = _Stopping()


def stop(signal_number: int) -> None:
    """React to a signal: raise ``Interrupted``, or cancel the running operation.

    Meant to be called from a signal handler, so in the main thread.
    """
    again = _stopping.again == signal_number
    if again:
        _stopping.again = None
        if not _stopping.routed:  # tripped just before ``stopping_on_signals`` left
            return
    if _stopping.pending is not None:
        _stop_again(_stopping.pending, signal_number, quietly=again)
        return
    _stopping.pending = Interrupted.for_signal(signal_number)
    if _stopping.cancellers:
        _log.warning(
            "%s received; stopping after the running operation is cancelled",
            signal.Signals(signal_number).name,
        )
        for cancel in list(_stopping.cancellers):
            cancel(signal_number)
    elif _stopping.uninterrupted:
        _stopping.held = _stopping.pending
    else:
        raise _stopping.pending


def _stop_again(pending: Interrupted, signal_number: int, *, quietly: bool) -> None:
    """A signal while ``pending`` stops the run: raise it again if it was dropped.

    It is still on its way (nothing to do) while a cancelled operation or an
    ``uninterrupted`` block runs to its end, or while the main thread handles it (the
    clean-up a second Ctrl-C must not cut short). Otherwise the code it was raised in
    caught it and went on: it is raised again, at once or at the end of the
    ``uninterrupted`` block the main thread is in now. A real second signal while an
    ``uninterrupted`` block holds the stop raises it at once: a transaction waiting for
    a database that does not answer must not keep a command from stopping.
    """
    if _stopping.held is pending and not quietly and not _stopping.cancellers:
        _stopping.held = None
        _log.warning(
            "%s received again: stopping without waiting for the database",
            signal.Signals(signal_number).name,
        )
        raise pending
    if _stopping.cancellers or _stopping.held is pending or _handling(pending):
        if not quietly:
            _log.warning(
                "%s received while already stopping; waiting for the clean-up to finish",
                signal.Signals(signal_number).name,
            )
        return
    if _stopping.uninterrupted:
        _stopping.held = pending
        return
    _log.warning("%s: the interrupted code dropped the stop; raising it again", pending)
    raise pending


def _handling(error: BaseException) -> bool:
    """Whether the main thread is handling ``error``, or an error raised while it was
    (its cause or context, at any depth)."""
    waiting = [sys.exc_info()[1]]
    seen: set[int] = set()
    while waiting:
        handled = waiting.pop()
        if handled is None or id(handled) in seen:
            continue
        if handled is error:
            return True
        seen.add(id(handled))
        waiting += [handled.__cause__, handled.__context__]
    return False


def deliver_again() -> None:
    """From another thread: raise a pending stop in the main thread again if the code it
    landed in dropped it (see ``stop``); nothing while no stop is pending.

    The signal is simulated (``_thread.interrupt_main``), as SIGTERM whatever stopped
    the run: CPython never lets a simulated signal kill the process, so one that reaches
    the main thread after ``stopping_on_signals`` gave SIGTERM back its default is
    dropped. It is raised at the main thread's next Python instruction (a blocking call
    finishes first).
    """
    with _stopping.delivering:
        if _stopping.pending is None or not _stopping.routed:
            return
        _stopping.again = signal.SIGTERM
        _thread.interrupt_main(signal.SIGTERM)


def stop_pending() -> bool:
    """Whether a signal's stop is on its way in this run (raised, held or dropped)."""
    return _stopping.pending is not None


def raise_if_interrupted() -> None:
    """Raise the pending stop when the exception being handled is it, or replaced it
    as it unwound through the code this ``except`` protects (a library's clean-up that
    failed on the way).

    For an ``except Exception`` that must not fail its caller (a log sink): the stop
    a signal raised there must still reach the command. A failure while a calling
    frame handles the stop (the sink writes a line of that frame's clean-up) is left
    to the sink: raising the stop there would cut the clean-up short.
    """
    raised = sys.exc_info()[1]
    if isinstance(raised, Interrupted):
        raise raised
    pending = _stopping.pending
    if pending is not None and _handling(pending) and not _caller_handles(pending, raised):
        raise pending


def _caller_handles(stop: Interrupted, raised: BaseException | None) -> bool:
    """Whether the frame that caught ``stop`` last is a caller of the frame that caught
    ``raised``: the stop was raised outside the code the ``except`` protects, and that
    caller's ``except`` or ``finally`` is handling it still.

    The frame at the head of a traceback is the outermost the error reached. A stop
    replaced inside the protected code was caught in a frame that has returned since
    (or in the ``except``'s own frame), never in one of its callers.
    """
    if stop.__traceback__ is None or raised is None or raised.__traceback__ is None:
        return False
    catcher = stop.__traceback__.tb_frame
    frame = raised.__traceback__.tb_frame.f_back
    while frame is not None:
        if frame is catcher:
            return True
        frame = frame.f_back
    return False


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Run the block to its end on a signal, then raise its ``Interrupted``.

    For short work a signal must not cut mid-way because what it runs in would drop or
    replace the stop (a database transaction). Only the main thread's blocks count: the
    signals are handled there.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stopping.uninterrupted += 1
    try:
        yield
    except BaseException as error:
        if _stopping.uninterrupted == 1 and (held := _take_held()) is not None:
            raise held from error  # the stop, not what the block failed with on the way
        raise
    finally:
        _stopping.uninterrupted -= 1
    if not _stopping.uninterrupted and (held := _take_held()) is not None:
        raise held


def _take_held() -> Interrupted | None:
    held, _stopping.held = _stopping.held, None
    return held


@contextmanager
def cancellable(cancel: Canceller) -> Iterator[None]:
    """Run the block to its end on a signal: call ``cancel`` then raise ``Interrupted``.

    ``cancel`` must make the block end soon by itself (it gets the signal number).
    Whatever the block then raises (the cancelled operation's own failure) is chained
    to the ``Interrupted`` that replaces it.
    """
    _stopping.cancellers.append(cancel)
    try:
        yield
    except BaseException as error:
        if _stopping.pending is not None and error is not _stopping.pending:
            raise _stopping.pending from error
        raise
    finally:
        _stopping.cancellers.remove(cancel)
    if _stopping.pending is not None:
        raise _stopping.pending


@contextmanager
def stopping_on_signals(
    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[None]:
    """Route ``signals`` to ``stop`` for the block (main thread only; else a no-op).

    The previous handlers come back afterwards, so a program embedding the CLI (or a
    test runner) keeps its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signal_number: int, _frame: object) -> None:
        stop(signal_number)

    previous = {number: signal.signal(number, handler) for number in signals}
    _stopping.pending = _stopping.held = _stopping.again = None
    _stopping.routed = signal.SIGTERM in signals  # ``deliver_again`` simulates SIGTERM
    try:
        yield
    finally:
        # No simulated signal from here on; one already tripped is ignored by ``stop``
        # (never left to CPython, which reports it on stderr once the handler is gone).
        with _stopping.delivering:
            _stopping.routed = False
        for number, old in previous.items():
            signal.signal(number, old)
        _stopping.pending = _stopping.held = _stopping.again = None
