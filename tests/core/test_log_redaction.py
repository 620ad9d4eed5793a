"""The CLI's and the service's logs mask secrets in tracebacks too, with one filter."""

from __future__ import annotations

import asyncio
import json
import logging
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
