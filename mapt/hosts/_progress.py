"""Progress lines of one lifecycle call, handed to a callback as well as to the logs.

Every layer reports progress on the ``mapt`` logger (allocation choices, ``up`` runs,
failovers, readiness). The CLI shows those lines on stderr; the service keeps them per
execution (``GET /v1/executions/{id}/log``). ``reporting_progress`` hands a callback
the lines logged while a call runs in the current context (thread or task), and only
those: calls running at once in other threads each get their own. The lines are
redacted like every other log line.

The Pulumi engine's own lines (each resource as it is created) are written to a
stream from the engine's event thread, not logged: ``ProgressStream`` is that stream
for one call, handing each line to the same callback (``HostServices.reporting_to``).
"""

from __future__ import annotations

import contextvars
import io
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mapt.core import get_logger, redact
from mapt.core._logging import InterruptsPass

# Receives one progress line: its level name (INFO, WARNING, ...) and its text.
Progress = Callable[[str, str], None]

_current: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "mapt_hosts_progress", default=None
)


class _ProgressHandler(InterruptsPass):
    """Hands each record to the progress callback of the context that logged it."""

    def emit(self, record: logging.LogRecord) -> None:
        progress = _current.get()
        if progress is None:
            return
        try:
            progress(record.levelname, redact(record.getMessage()))
        except Exception:  # a failing sink must not fail the operation it reports on
            self.handleError(record)


_handler = _ProgressHandler(logging.INFO)


@contextmanager
def reporting_progress(progress: Progress | None) -> Iterator[None]:
    """Hand ``progress`` every ``mapt`` log line of INFO or above logged inside the block.

    None reports nothing more than the logs do. The ``mapt`` logger is set to INFO if
    it was quieter, so the lines are produced at all (a service that never configured
    logging); a debug level set by the CLI is kept.
    """
    if progress is None:
        yield
        return
    logger = get_logger("mapt")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(_handler)  # once: logging adds a handler already there no more
    token = _current.set(progress)
    try:
        yield
    finally:
        _current.reset(token)


class ProgressStream(io.TextIOBase):
    """A text stream handing each complete line written to it to ``progress`` (as INFO).

    Safe to write from several threads (the engine writes from its event thread); a
    last line without a line break is handed over by ``flush``. It is never a terminal,
    so writers print plain lines to it rather than a live display.
    """

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self._progress = progress
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._hand(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        if line:
            self._hand(line)

    def _hand(self, line: str) -> None:
        text = redact(line.rstrip("\r"))
        if text.strip():
            self._progress("INFO", text)
