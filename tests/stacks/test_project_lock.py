"""The project lock: one create or destroy per project at a time, naming the holder."""

from __future__ import annotations

import threading
from pathlib import Path

import boto3
import pytest

from mapt.core import StateLockedError
from mapt.stacks import break_project_lock, project_lock
from tests.harness.spot_market import ApiCallLog


def hold_in_thread(url: str, release: threading.Event, held: threading.Event) -> threading.Thread:
    def run() -> None:
        with project_lock(url, "demo", operation="create", timeout=5):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(10)
    return thread


def test_a_second_run_gives_up_naming_the_holder(tmp_path: Path) -> None:
    url = f"file://{tmp_path}"
    release, held = threading.Event(), threading.Event()
    thread = hold_in_thread(url, release, held)
    try:
        with (
            pytest.raises(StateLockedError) as caught,
            project_lock(url, "demo", operation="create", timeout=0.2),
        ):
            pass
        message = str(caught.value)
        assert "project 'demo' is locked by create by " in message and "pid" in message
        assert "--lock-timeout" in message
        # Other projects are not held up.
        with project_lock(url, "other", operation="create", timeout=0.2):
            pass
    finally:
        release.set()
        thread.join()
    with project_lock(url, "demo", operation="destroy", timeout=0.2) as me:
        assert me.operation == "destroy"
    assert not (tmp_path / ".mapt/locks/demo.json").exists()  # the note goes with the lock


def test_a_waiting_run_proceeds_when_the_holder_finishes(tmp_path: Path) -> None:
    url = f"file://{tmp_path}"
    release, held = threading.Event(), threading.Event()
    thread = hold_in_thread(url, release, held)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    with project_lock(url, "demo", operation="create", timeout=10):
        assert release.is_set()  # got it only after the holder let go
    thread.join()


def test_s3_lock_is_exclusive_names_the_holder_and_can_be_broken(aws: ApiCallLog) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ci-state")
    url = "s3://ci-state/team?region=us-east-1"
    naps: list[float] = []
    now = [0.0]

    def nap(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    # What a run killed while holding the lock leaves behind.
    note = '{"user": "runner", "host": "gh-7", "pid": 4242, "operation": "create", '
    note += '"since": "2026-11-22T08:00:00Z"}'
    s3.put_object(Bucket="ci-state", Key="team/.mapt/locks/demo.json", Body=note.encode())
    with (
        pytest.raises(StateLockedError, match=r"locked by create by runner@gh-7 \(pid 4242\)"),
        project_lock(
            url, "demo", operation="create", timeout=5, sleep=nap, clock=lambda: now[0]
        ),
    ):
        pass
    assert naps == [2.0, 2.0, 2.0]  # it polled until the timeout, then gave up

    holder = break_project_lock(url, "demo")
    assert holder is not None and (holder.user, holder.pid) == ("runner", 4242)
    assert break_project_lock(url, "demo") is None
    with project_lock(url, "demo", operation="create", timeout=0):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="ci-state")["Contents"]]
        assert keys == ["team/.mapt/locks/demo.json"]
    assert "Contents" not in s3.list_objects_v2(Bucket="ci-state")
