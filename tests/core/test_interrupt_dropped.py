"""A stop that the interrupted code catches and drops is raised again.

The signal handler raises ``Interrupted`` wherever the main thread is. Code that
catches ``Exception`` so as never to fail (a library's pool returning a connection, a
rollback that fails and replaces the stop) drops it; before, the next signal was only
logged as "already stopping", and a service worker, signalled once by its server, ran
its operation on until the server's grace ended and it was killed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import threading
import time

import pytest

from mapt.core import Interrupted, deliver_again, stopping_on_signals, uninterrupted
from mapt.core._interrupt import raise_if_interrupted
from mapt.core._logging import _PlainHandler


def _signal_now(number: int = signal.SIGINT) -> None:
    """Send ``number`` to this thread (the main one; ``os.kill`` may reach another
    thread, and the handler then run later); its handler runs before this returns."""
    signal.raise_signal(number)
    for _ in range(1000):  # bytecodes for the interpreter to run the handler at
        pass


def _delivered_again_by_a_watcher() -> None:
    """``deliver_again`` from another thread, as a worker's heartbeat calls it; the
    simulated signal is handled at one of the bytecodes that follow."""
    watcher = threading.Thread(target=deliver_again)
    watcher.start()
    watcher.join()
    for _ in range(1000):
        pass


def _dropped_stop() -> None:
    """A signal that lands in code which catches ``Exception`` and goes on."""
    with contextlib.suppress(Exception):
        _signal_now()


def test_a_second_signal_raises_a_stop_the_interrupted_code_dropped() -> None:
    with pytest.raises(Interrupted) as raised, stopping_on_signals():
        _dropped_stop()
        _signal_now(signal.SIGTERM)
        pytest.fail("the command went on after its stop was dropped and a signal came again")
    assert raised.value.signal_number == signal.SIGINT  # the first signal's stop


def test_a_second_signal_while_the_stop_is_cleaned_up_does_not_cut_the_clean_up() -> None:
    cleaned: list[str] = []
    with pytest.raises(Interrupted), stopping_on_signals():
        try:
            _signal_now()
        finally:
            _signal_now()  # a second Ctrl-C while the clean-up runs
            cleaned.append("done")
    assert cleaned == ["done"]


def test_a_stop_replaced_by_a_failing_clean_up_still_reaches_the_command() -> None:
    """What SQLAlchemy does when a signal lands mid-query: the rollback fails on the busy
    connection and its error replaces the stop; a sink's ``except`` must let it through."""
    with pytest.raises(Interrupted), stopping_on_signals():
        try:
            try:
                _signal_now()
            except Interrupted:
                raise RuntimeError("rollback failed: another command in progress") from None
        except Exception:
            raise_if_interrupted()
        pytest.fail("the command went on after the error that replaced its stop")


def test_a_watching_thread_raises_a_dropped_stop_again_without_a_signal() -> None:
    """A service worker's heartbeat does this: its server sends SIGTERM only once."""
    watcher = threading.Timer(0.2, deliver_again)
    with pytest.raises(Interrupted), stopping_on_signals():
        _dropped_stop()
        watcher.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.01)
        pytest.fail("the dropped stop was not raised again")
    watcher.join()


def test_a_watching_thread_leaves_a_stop_being_cleaned_up_alone() -> None:
    cleaned: list[str] = []
    with pytest.raises(Interrupted), stopping_on_signals():
        try:
            _signal_now()
        finally:
            _delivered_again_by_a_watcher()
            cleaned.append("done")
    assert cleaned == ["done"]


def test_a_signal_inside_an_uninterrupted_block_is_raised_when_the_block_ends() -> None:
    ran: list[str] = []
    with pytest.raises(Interrupted), stopping_on_signals():
        with uninterrupted():
            _signal_now()
            ran.append("the rest of the block")
        pytest.fail("the stop was not raised when the block ended")
    assert ran == ["the rest of the block"]


def test_a_dropped_stop_raised_again_inside_an_uninterrupted_block_waits_for_its_end() -> None:
    ran: list[str] = []
    with pytest.raises(Interrupted), stopping_on_signals():
        _dropped_stop()
        with uninterrupted():
            _signal_now(signal.SIGTERM)
            ran.append("the rest of the block")
        pytest.fail("the stop was not raised when the block ended")
    assert ran == ["the rest of the block"]


def test_a_block_that_fails_after_a_signal_raises_the_stop_from_its_failure() -> None:
    with pytest.raises(Interrupted) as raised, stopping_on_signals(), uninterrupted():
        _signal_now()
        raise ValueError("the commit failed")
    assert isinstance(raised.value.__cause__, ValueError)


def test_a_second_signal_cuts_an_uninterrupted_block_short() -> None:
    """A transaction waiting for a database that does not answer: Ctrl-C twice stops."""
    with pytest.raises(Interrupted), stopping_on_signals(), uninterrupted():
        _signal_now()
        _signal_now()
        pytest.fail("the second signal did not cut the block short")


def test_the_watching_thread_does_not_cut_an_uninterrupted_block_short() -> None:
    ran: list[str] = []
    with pytest.raises(Interrupted), stopping_on_signals(), uninterrupted():
        _signal_now()
        _delivered_again_by_a_watcher()
        ran.append("the rest of the block")
    assert ran == ["the rest of the block"]


class _BrokenPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError("the log's reader is gone")


def test_a_log_line_failing_during_the_clean_up_does_not_cut_it_short() -> None:
    """The clean-up of a stop (a lock released, what was created removed) logs; a sink
    whose stream fails then must not raise the stop in the middle of it."""
    log = logging.getLogger("mapt.tests.broken-sink")
    sink = _PlainHandler(_BrokenPipe())
    log.addHandler(sink)
    log.propagate = False
    cleaned: list[str] = []
    try:
        with pytest.raises(Interrupted), stopping_on_signals():
            try:
                _signal_now()
            except BaseException:
                log.warning("removing what was created")
                cleaned.append("done")
                raise
    finally:
        log.removeHandler(sink)
        log.propagate = True
    assert cleaned == ["done"]


def test_a_real_signal_is_never_taken_for_a_watching_thread_s_simulated_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A simulated SIGTERM then a real SIGINT before the main thread handles either (a
    worker's heartbeat re-delivering, then a cancel): the SIGINT is the second signal
    that cuts the held block, and the simulated SIGTERM stays quiet."""

    def deliver_then_signal() -> None:
        deliver_again()
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted), stopping_on_signals(), uninterrupted():
        _signal_now()
        watcher = threading.Thread(target=deliver_then_signal)
        watcher.start()
        watcher.join()  # both are pending when it returns: SIGINT is handled first
        for _ in range(1000):  # bytecodes for the handlers to run at
            pass
        pytest.fail("the second real signal did not cut the block short")
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("SIGINT received again") for message in messages)
    assert not any(message.startswith("SIGTERM") for message in messages)


def test_a_block_that_returns_after_dropping_its_stop_ends_normally() -> None:
    """Its work is done: a service worker records its operation as succeeded rather
    than handing it back to be run again."""
    finished: list[str] = []
    with stopping_on_signals():
        _dropped_stop()
        finished.append("the work")
    assert finished == ["the work"]
