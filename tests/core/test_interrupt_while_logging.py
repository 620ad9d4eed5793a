"""A stop signal that lands while a log line is written still stops the command.

The signal handler raises ``Interrupted`` wherever the main thread is. Log sinks catch
``Exception`` so that a failing sink never fails its caller; before they let the stop
through, a SIGINT arriving mid-write was swallowed and the next one ignored as
"already stopping": a cancelled service execution ran to its end and succeeded.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from mapt.core import Interrupted, configure_logging, get_logger, stopping_on_signals


def _signal_now() -> None:
    """Send SIGINT to this process; its handler runs before this function returns."""
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):  # bytecodes for the interpreter to run the handler at
        pass


class _SignallingStream(io.StringIO):
    def write(self, text: str) -> int:
        _signal_now()
        return super().write(text)


@pytest.fixture
def stderr_that_signals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "stderr", _SignallingStream())
    configure_logging()
    yield
    monkeypatch.undo()
    configure_logging()


@pytest.mark.usefixtures("stderr_that_signals")
def test_a_signal_during_a_cli_log_line_stops_the_command() -> None:
    with pytest.raises(Interrupted), stopping_on_signals():
        get_logger("mapt.test").warning("a line being written")
        pytest.fail("the command went on after SIGINT")


def test_a_signal_during_a_progress_callback_stops_the_call() -> None:
    from mapt.hosts import reporting_progress

    def progress(_level: str, _line: str) -> None:
        _signal_now()

    with pytest.raises(Interrupted), stopping_on_signals(), reporting_progress(progress):
        get_logger("mapt.test").info("a line being reported")
        pytest.fail("the call went on after SIGINT")


def test_a_signal_while_an_execution_stores_a_log_line_stops_the_execution() -> None:
    from mapt.service._workers import _execution_log

    class Store:
        def append_log(self, *_args: Any) -> None:
            _signal_now()

    stream = _execution_log(Store(), "ex-1", io.StringIO())  # type: ignore[arg-type]
    with pytest.raises(Interrupted), stopping_on_signals():
        stream.write("mapt: INFO: step 1\n")
        pytest.fail("the execution went on after SIGINT")
