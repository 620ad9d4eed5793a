"""Showing a Pulumi operation while it runs, from the engine's event stream.

A deployment takes minutes; a silent CI step looks hung and gets cancelled, which is
how stacks end up locked. On a terminal a rich live line shows resources done/total,
the current operation and the elapsed time; elsewhere (CI logs) each event worth
reading is one plain line. Everything goes to stderr, so stdout stays free for
results (``--output json``), and every line passes through ``redact``.

``Progress`` also keeps the engine's error diagnostics: they are the substance of a
failure message (see ``mapt.stacks._errors``).
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from mapt.core import redact

if TYPE_CHECKING:
    from pulumi.automation import EngineEvent
    from rich.live import Live

# Step operations that change nothing: not shown, not counted as work.
_QUIET_OPS = {"same", "read", "refresh"}


def urn_name(urn: str) -> str:
    """The logical name at the end of a URN (``urn:pulumi:s::p::type::name``)."""
    return urn.rsplit("::", 1)[-1]


class Progress:
    """An ``on_event`` callback that displays an operation and keeps its diagnostics.

    Use it as a context manager around the operation. ``live`` chooses the rich
    display (default: when ``stream`` is a terminal). Events may arrive on another
    thread; state is guarded by a lock.
    """

    def __init__(
        self,
        stack_name: str,
        operation: str,
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self.stack_name = stack_name
        self.operation = operation
        self._stream = stream if stream is not None else sys.stderr
        self._live_wanted = self._stream.isatty() if live is None else live
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._pending: dict[str, str] = {}  # urn -> op, steps begun and not finished
        self._seen: set[str] = set()
        self._done = 0
        self._failed = 0
        self._current = ""
        self._live: Live | None = None
        self.diagnostics: list[str] = []
        self.warnings: list[str] = []
        self.summary: dict[str, int] = {}

    # -- context ------------------------------------------------------------------
    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self._live_wanted:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self._stream, stderr=self._stream is sys.stderr)
            self._live = Live(self._render(), console=console, transient=True, refresh_per_second=4)
            self._live.start()
        else:
            self._line(f"{self.operation} started")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        outcome = "failed" if exc is not None else "finished"
        self._line(f"{self.operation} {outcome}: {self.status()}")

    # -- state ----------------------------------------------------------------------
    @property
    def done(self) -> int:
        return self._done

    @property
    def total(self) -> int:
        """Resources with a change so far (the engine reveals them as the program runs)."""
        return len(self._seen)

    def status(self) -> str:
        """``<done>/<total> resources, <elapsed>s`` plus failures, as one phrase."""
        elapsed = int(time.monotonic() - self._started)
        text = f"{self._done}/{self.total} resources, {elapsed}s"
        if self._failed:
            text += f", {self._failed} failed"
        return text

    # -- the callback ------------------------------------------------------------------
    def __call__(self, event: EngineEvent) -> None:
        self.on_event(event)

    def on_event(self, event: EngineEvent) -> None:
        """Handle one engine event (the ``on_event`` argument of ``Stack.up`` etc.)."""
        lines: list[str] = []
        with self._lock:
            if event.resource_pre_event is not None:
                meta = event.resource_pre_event.metadata
                op = step_op(meta.op)
                if op not in _QUIET_OPS:
                    self._pending[meta.urn] = op
                    self._seen.add(meta.urn)
                    self._current = f"{op} {meta.type} {urn_name(meta.urn)}"
                    lines.append(f"{op} {meta.type} {urn_name(meta.urn)} ...")
            elif event.res_outputs_event is not None:
                meta = event.res_outputs_event.metadata
                finished = self._pending.pop(meta.urn, "")
                if finished:
                    self._done += 1
                    lines.append(f"{finished} {meta.type} {urn_name(meta.urn)} done")
            elif event.res_op_failed_event is not None:
                meta = event.res_op_failed_event.metadata
                self._pending.pop(meta.urn, "")
                self._failed += 1
                lines.append(f"{step_op(meta.op)} {meta.type} {urn_name(meta.urn)} FAILED")
            elif event.diagnostic_event is not None:
                diag = event.diagnostic_event
                text = " ".join(diag.message.split())
                if text and diag.severity == "error":
                    self.diagnostics.append(redact(text))
                    lines.append(f"error: {text}")
                elif text and diag.severity == "warning":
                    self.warnings.append(redact(text))
                    lines.append(f"warning: {text}")
            elif event.summary_event is not None:
                self.summary = {
                    step_op(op): int(count)
                    for op, count in (event.summary_event.resource_changes or {}).items()
                }
        for line in lines:
            self._line(line)
        if self._live is not None:
            self._live.update(self._render())

    # -- output -----------------------------------------------------------------------
    def _line(self, text: str) -> None:
        message = redact(f"{self.stack_name}: {text} [{self.status()}]")
        if self._live is not None:
            self._live.console.print(message, markup=False, highlight=False)
        else:
            print(f"mapt: {message}", file=self._stream, flush=True)

    def _render(self) -> Any:
        from rich.spinner import Spinner

        current = self._current or "starting"
        return Spinner(
            "dots", text=redact(f"{self.stack_name} {self.operation}: {current} [{self.status()}]")
        )


def step_op(op: Any) -> str:
    """An ``OpType`` (or its string) as its plain value, e.g. ``create``."""
    return str(getattr(op, "value", op))
