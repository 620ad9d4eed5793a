"""Operations the service's tests run as executions (in worker processes, by reference).

Each writes what happened to a journal file named in its arguments, one JSON line per
event, so a test can see every attempt, from any process, after any crash.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from mapt.core import NoCapacityError, get_logger
from mapt.service import ExecutionContext, Operation

_log = get_logger(__name__)


def _journal(context: ExecutionContext, event: str, **fields: Any) -> None:
    path = Path(str(context.arguments["journal"]))
    entry = {
        "event": event,
        "execution": context.execution_id,
        "attempt": context.attempt,
        "pid": os.getpid(),
        "at": time.time(),
        **fields,
    }
    with path.open("a") as stream:
        stream.write(json.dumps(entry) + "\n")


def journal(path: Path) -> list[dict[str, Any]]:
    """The events written so far (none when the file does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def sleep(context: ExecutionContext) -> dict[str, Any]:
    """Sleep ``seconds`` in short steps, logging each step (or, given ``until``, a path,
    until that file exists, ``seconds`` at most: a test decides when it ends, whatever
    the machine's load); say whether an earlier
    attempt was still running when this one started (it must never be): it started,
    recorded no stop or finish, and its process is alive. (A process that stopped the
    operation and handed the execution back may take a moment more to exit.)"""
    entries = [
        entry
        for entry in journal(Path(str(context.arguments["journal"])))
        if entry["execution"] == context.execution_id
    ]
    ended = {entry["pid"] for entry in entries if entry["event"] in ("stop", "finish")}
    earlier = [entry["pid"] for entry in entries if entry["event"] == "start"]
    running = [pid for pid in earlier if pid not in ended and alive(pid)]
    seconds = float(context.arguments.get("seconds", 1))
    if context.attempt > 1 and "resumed_seconds" in context.arguments:
        # A test that stops the first attempt makes it long (so it cannot end by
        # itself first on a slow machine) and the resumed one short.
        seconds = float(context.arguments["resumed_seconds"])
    until = context.arguments.get("until")
    deadline = time.monotonic() + seconds
    step = 0
    try:
        # Inside the ``try``: a stop that lands once "start" is on disk is recorded.
        _journal(context, "start", overlapping=running)
        while time.monotonic() < deadline and not (until and Path(str(until)).exists()):
            step += 1
            _log.info("step %d of %s", step, context.target)
            time.sleep(0.1)
    except BaseException as stopped:
        _journal(context, "stop", reason=type(stopped).__name__)
        raise
    _journal(context, "finish")
    return {"slept": seconds, "pid": os.getpid()}


def drop_a_stop(context: ExecutionContext) -> dict[str, Any]:
    """Catch and drop the first stop, as a library that catches ``Exception`` does when
    a signal lands in it (``waiting`` is journaled before, ``dropped`` after), then
    ``sleep``."""
    _journal(context, "waiting")
    try:
        while True:
            time.sleep(0.05)
    except Exception as dropped:
        _journal(context, "dropped", reason=type(dropped).__name__)
    return sleep(context)


def no_capacity(context: ExecutionContext) -> None:
    _journal(context, "start")
    raise NoCapacityError("no availability zone can run m5.large on spot right now")


def broken(context: ExecutionContext) -> None:
    raise ZeroDivisionError("a bug in the operation")


def process_globals(context: ExecutionContext) -> dict[str, Any]:
    """What this execution saw of process-wide state before changing it.

    Pulumi's stack configuration (``pulumi.runtime.set_config`` writes into one dict
    shared by every thread that has not set its own) and the environment are
    process-wide: in one process shared by two executions, the later sees the earlier's.
    """
    from pulumi.runtime.config import CONFIG, set_config

    seen = {
        "config": CONFIG.get().get("mapt:probe"),
        "environment": os.environ.get("MAPT_TEST_PROBE"),
        "pid": os.getpid(),
    }
    set_config("mapt:probe", context.execution_id)
    os.environ["MAPT_TEST_PROBE"] = context.execution_id
    time.sleep(float(context.arguments.get("seconds", 1)))
    _journal(context, "finish")
    return seen


OPERATIONS = {
    operation.name: operation
    for operation in (
        Operation("test.sleep", sleep),
        Operation("test.sleep-once", sleep, resumable=False),
        Operation("test.drop-a-stop", drop_a_stop),
        Operation("test.no-capacity", no_capacity),
        Operation("test.broken", broken),
        Operation("test.globals", process_globals),
    )
}
