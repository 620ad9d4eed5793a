"""The CLI's and the service's logs mask secrets in tracebacks too, with one filter."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from mapt.core import configure_logging, get_logger, register_secret
from mapt.service._server import configure_service_logging

SECRET = "hunter2-but-longer"


@pytest.fixture
def kept_loggers() -> Iterator[None]:
    """The loggers ``configure_service_logging`` takes over, as they were, afterwards."""
    names = ("mapt", "uvicorn", "alembic")
    saved = {
        name: (list(logger.handlers), logger.level, logger.propagate)
        for name, logger in ((n, logging.getLogger(n)) for n in names)
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_a_debug_traceback_of_the_program_loop_shows_no_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mapt.stacks._dryrun import _quiet

    configure_logging(debug=True)
    register_secret(SECRET)
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet)  # as the dry run's program loops do
    try:
        try:
            raise RuntimeError(f"register --password {SECRET}: exit status 70")
        except RuntimeError as error:
            loop.call_exception_handler({"message": "task failed", "exception": error})
    finally:
        loop.close()
    err = capsys.readouterr().err
    assert "program run: task failed" in err and "Traceback" in err
    assert "RuntimeError: register --password ***: exit status 70" in err
    assert SECRET not in err


def test_the_service_logs_a_traceback_masked_in_its_json_line(
    capsys: pytest.CaptureFixture[str], kept_loggers: None
) -> None:
    configure_service_logging()
    register_secret(SECRET)
    try:
        raise KeyError(f"no engine for {SECRET}")
    except KeyError:
        get_logger("mapt.tests").exception("request failed with %s", SECRET)
    err = capsys.readouterr().err
    entry = json.loads(err.strip().splitlines()[-1])
    assert entry["message"] == "request failed with ***"
    assert "KeyError: 'no engine for ***'" in entry["traceback"]
    assert SECRET not in err


# A log call with a bug of its own, then the caller's next step. In a process of its
# own: pytest's capture handlers, on every logger, make any logging error fail the test.
BAD_CALLS = {
    "too few arguments": 'log.warning("released %s of %s", "the lock")',
    "an argument that cannot be shown": (
        "class Unprintable:\n"
        "    def __str__(self): raise ValueError('no text for this one')\n"
        "log.warning('destroyed %s', Unprintable())"
    ),
}


@pytest.mark.parametrize("setup", ["configure_logging", "configure_service_logging"])
@pytest.mark.parametrize("bad_call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_a_bad_log_call_is_reported_and_the_caller_goes_on(setup: str, bad_call: str) -> None:
    where = "mapt.core" if setup == "configure_logging" else "mapt.service._server"
    script = (
        f"from {where} import {setup}\n"
        "from mapt.core import get_logger\n"
        f"{setup}()\n"
        "log = get_logger('mapt.tests')\n"
        f"{bad_call}\n"
        "print('the caller went on')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "the caller went on\n"
    assert "--- Logging error ---" in run.stderr
