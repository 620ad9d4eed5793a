"""Two ``up``s of one stack at once on the real engine: Pulumi's lock, as mapt reads it."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from mapt.core import StateLockedError
from mapt.stacks import PulumiEngine, StackRef, list_stacks
from tests.stacks.real_engine.conftest import RealCli, leftovers


def engine() -> PulumiEngine:
    return PulumiEngine(progress_stream=io.StringIO(), live=False)


def exporting(value: str) -> Callable[[], None]:
    def program() -> None:
        pulumi.export("az", value)

    return program


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_second_up_is_refused_naming_the_holder_and_mapt_sees_the_same_lock(
    real_cli: RealCli, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    ref = StackRef("demo", "spotOption", f"file://{state}")
    engine().up(ref, exporting("eu-north-1a"))

    release = threading.Event()
    running = threading.Event()

    def holding() -> None:
        pulumi.export("az", "eu-north-1b")
        running.set()
        release.wait(60)

    errors: list[BaseException] = []

    def first_up() -> None:
        try:
            engine().up(ref, holding)
        except BaseException as error:
            errors.append(error)

    holder = threading.Thread(target=first_up)
    holder.start()
    try:
        wait_for(running.is_set, "the first up to run its program")
        # mapt finds Pulumi's lock file where it looks, in the project-scoped layout.
        [lock] = engine().list_locks(ref)
        lock_dir = state / ".pulumi/locks/organization/demo/spotOption-demo"
        assert lock.startswith(f"file://{lock_dir}/") and lock.endswith(".json")
        [listed] = list_stacks(ref.backend_url)
        assert listed.locks == (lock,)
        note = json.loads(Path(lock.removeprefix("file://")).read_text())

        with pytest.raises(StateLockedError) as caught:
            engine().up(ref, exporting("eu-west-1a"))
        assert caught.value.exit_code == 3
        message = str(caught.value)
        assert message.startswith(
            "stack spotOption-demo is locked by another run; retry, or --force-destroy if "
            "that run is dead"
        )
        holder_text = f"lock taken by {note['username']}@{note['hostname']}, pid {note['pid']}"
        assert holder_text in message and "\n" not in message
        dead_runs_lock = tmp_path / "left-by-a-dead-run.json"
        shutil.copy(lock.removeprefix("file://"), dead_runs_lock)
    finally:
        release.set()
        holder.join(120)
    assert errors == []
    assert engine().outputs(ref) == {"az": "eu-north-1b"}
    assert engine().list_locks(ref) == []

    # A run killed while holding the lock leaves that file: every run is refused until
    # force_unlock (--force-destroy) removes exactly it.
    shutil.copy(dead_runs_lock, lock.removeprefix("file://"))
    with pytest.raises(StateLockedError):
        engine().destroy(ref)
    assert engine().force_unlock(ref) == [lock]
    assert engine().destroy(ref) is True
    assert leftovers(real_cli) == []
