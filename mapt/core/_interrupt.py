"""Stopping on SIGINT and SIGTERM at a safe point, as an ``Interrupted`` error.

The CLI's signal handler calls ``stop(signal)``. Outside any operation that must not
be cut short, that raises ``Interrupted`` at once in the main thread, so the command
unwinds through its ``with`` blocks (the project lock is released on the way) and the
CLI prints one ``Error:`` line with exit 130 (SIGINT) or 143 (SIGTERM, what a cancelled
CI job sends). Inside a ``cancellable(cancel)`` block (a running Pulumi command) the
signal instead calls ``cancel``, which asks the operation to stop by itself (Pulumi
then finishes its in-flight resource operations and writes its state), and
``Interrupted`` is raised when the block ends. Further signals while stopping are
logged and otherwise ignored, so a second Ctrl-C cannot cut the clean-up short.

Because the handler raises wherever the main thread happens to be, the stop can land
inside code that catches ``Exception`` so as never to fail its caller: a log handler
(``logging`` swallows what its stream raises), or a sink storing a log line. Each such
``except`` calls ``raise_if_interrupted`` first; the signal is otherwise lost, since
the next one is ignored as "already stopping".
"""

from __future__ import annotations

import signal
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


_stopping = _Stopping()


def stop(signal_number: int) -> None:
    """React to a signal: raise ``Interrupted``, or cancel the running operation.

    Meant to be called from a signal handler, so in the main thread.
    """
    if _stopping.pending is not None:
        _log.warning(
            "%s received while already stopping; waiting for the clean-up to finish",
            signal.Signals(signal_number).name,
        )
        return
    _stopping.pending = Interrupted.for_signal(signal_number)
    if not _stopping.cancellers:
        raise _stopping.pending
    _log.warning(
        "%s received; stopping after the running operation is cancelled",
        signal.Signals(signal_number).name,
    )
    for cancel in list(_stopping.cancellers):
        cancel(signal_number)


def raise_if_interrupted() -> None:
    """Re-raise the exception being handled when it is a signal's ``Interrupted``.

    For an ``except Exception`` that must not fail its caller (a log sink): the stop
    a signal raised there must still reach the command.
    """
    import sys

    raised = sys.exc_info()[1]
    if isinstance(raised, Interrupted):
        raise raised


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
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signal_number: int, _frame: object) -> None:
        stop(signal_number)

    previous = {number: signal.signal(number, handler) for number in signals}
    _stopping.pending = None
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
        _stopping.pending = None
