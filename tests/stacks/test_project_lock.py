"""The project lock: one create or destroy per project at a time, owned by its holder.

S3 runs against moto in-process (``aws``) or, where another process or S3's ``Date``
header is needed, against a ``moto_server`` thread on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from mapt.core import MaptError, OperationError, PrerequisiteError, StateLockedError
from mapt.stacks import LockHolder, break_project_lock, project_lock
from tests.harness.spot_market import ApiCallLog

BUCKET = "ci-state"
KEY = "team/.mapt/locks/demo.json"


@pytest.fixture(autouse=True)
def mapt_logs_reach_caplog(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLI test earlier in the session may have stopped mapt's logs propagating."""
    monkeypatch.setattr(logging.getLogger("mapt"), "propagate", True)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 for this module: ``host:port``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def served_bucket(aws_env: None, moto_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the moto server; returns its backend URL (prefix ``team``)."""
    bucket = f"lock-{request.node.name.replace('_', '-')[:40].strip('-')}"
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://{moto_endpoint}")
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/team?region=us-east-1&endpoint={moto_endpoint}&disableSSL=true"


def s3_of(url: str) -> tuple[Any, str]:
    """A client and the bucket for a served backend URL."""
    bucket = url.removeprefix("s3://").split("/")[0]
    endpoint = url.split("endpoint=")[1].split("&")[0]
    return boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://{endpoint}"), bucket


def in_process_s3() -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def note_in(client: Any, bucket: str = BUCKET) -> dict[str, Any]:
    return json.loads(client.get_object(Bucket=bucket, Key=KEY)["Body"].read())  # type: ignore[no-any-return]


def enter(lock: AbstractContextManager[LockHolder]) -> LockHolder:
    return lock.__enter__()


def leave(lock: AbstractContextManager[LockHolder]) -> None:
    lock.__exit__(None, None, None)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def hold_in_thread(url: str, release: threading.Event, held: threading.Event) -> threading.Thread:
    def run() -> None:
        with project_lock(url, "demo", operation="create", timeout=5):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(10)
    return thread


# -- waiting and naming the holder ----------------------------------------------------------


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
    s3 = in_process_s3()
    url = "s3://ci-state/team?region=us-east-1"
    naps: list[float] = []
    now = [0.0]

    def nap(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    # What an older mapt killed while holding the lock leaves: no token, no lease.
    note = '{"user": "runner", "host": "gh-7", "pid": 4242, "operation": "create", '
    note += '"since": "2026-11-22T08:00:00Z"}'
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=note.encode())
    with (
        pytest.raises(StateLockedError, match=r"locked by create by runner@gh-7 \(pid 4242\)"),
        project_lock(url, "demo", operation="create", timeout=5, sleep=nap, clock=lambda: now[0]),
    ):
        pass
    assert naps == [2.0, 2.0, 2.0]  # it polled until the timeout, then gave up

    holder = break_project_lock(url, "demo")
    assert holder is not None and (holder.user, holder.pid) == ("runner", 4242)
    assert break_project_lock(url, "demo") is None
    with project_lock(url, "demo", operation="create", timeout=0):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert keys == [KEY]
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


# -- ownership --------------------------------------------------------------------------------


def test_a_broken_holders_release_leaves_its_successors_lock(aws: ApiCallLog) -> None:
    s3 = in_process_s3()
    url = "s3://ci-state/team?region=us-east-1"
    run_a = project_lock(url, "demo", operation="create", timeout=0)
    enter(run_a)

    # B: --force-destroy breaks A's live lock, saying whose it was and how old, and takes it.
    broken = break_project_lock(url, "demo")
    assert broken is not None and (broken.operation, broken.pid) == ("create", os.getpid())
    assert "(0 min ago)" in broken.describe()
    run_b = project_lock(url, "demo", operation="destroy", timeout=0)
    enter(run_b)

    # A ends: B's lock stays, and A's run does not end as a success.
    try:
        leave(run_a)
        lost: StateLockedError | None = None
    except StateLockedError as error:
        lost = error
    assert note_in(s3)["operation"] == "destroy"
    with (  # C cannot enter while B is inside.
        pytest.raises(StateLockedError, match="locked by destroy by"),
        project_lock(url, "demo", operation="create", timeout=0),
    ):
        pass
    assert lost is not None
    assert "this create lost the lock of project 'demo'" in str(lost)
    assert "it was taken over by destroy by" in str(lost)
    leave(run_b)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_a_renewal_that_finds_its_lock_taken_stops_and_fails_the_holder(
    aws: ApiCallLog, caplog: pytest.LogCaptureFixture
) -> None:
    s3 = in_process_s3()
    url = "s3://ci-state/team?region=us-east-1"
    # A renews often, yet seldom enough that B's read-then-delete fits between two
    # renewals on a loaded machine (else the break is refused as "changed 5 times").
    run_a = project_lock(url, "demo", operation="create", timeout=0, renew_every=0.25)
    a = enter(run_a)
    wait_for(lambda: note_in(s3)["renewals"] >= 1, "A's first renewal")
    broken = break_project_lock(url, "demo")
    assert broken is not None and broken.token == a.token
    run_b = project_lock(url, "demo", operation="destroy", timeout=0)
    b = enter(run_b)

    # A's next renewal finds B's lock (or none, if it looked between B's break and
    # B's take): A stops renewing and says so at once, without overwriting B's note.
    with caplog.at_level(logging.WARNING, logger="mapt"):
        wait_for(lambda: "lost the project lock" in caplog.text, "A to notice")
    assert re.search(
        r"lost the project lock .*: it was (taken over by destroy by|removed)", caplog.text
    )
    renewals = note_in(s3)["renewals"]
    time.sleep(1.25)  # five of A's renewal periods
    assert note_in(s3)["token"] == b.token and note_in(s3)["renewals"] == renewals
    with pytest.raises(StateLockedError, match="this create lost the lock of project 'demo'"):
        leave(run_a)
    assert note_in(s3)["token"] == b.token
    leave(run_b)


def test_a_holder_whose_lock_was_removed_fails_when_it_ends(aws: ApiCallLog) -> None:
    s3 = in_process_s3()
    url = "s3://ci-state/team?region=us-east-1"
    run = project_lock(url, "demo", operation="create", timeout=0)
    enter(run)
    assert break_project_lock(url, "demo") is not None
    with pytest.raises(StateLockedError, match=r"it was removed \(--force-destroy\?\)"):
        leave(run)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_file_note_is_removed_only_by_its_owner(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"file://{tmp_path}"
    note = tmp_path / ".mapt/locks/demo.json"
    run = project_lock(url, "demo", operation="create", timeout=0)
    me = enter(run)
    assert json.loads(note.read_text())["token"] == me.token
    theirs = dataclasses.replace(me, user="runner", host="gh-7", token="f" * 32)
    note.write_bytes(theirs.to_json())  # another run's note, however it got there
    with caplog.at_level(logging.WARNING, logger="mapt"):
        leave(run)
    assert json.loads(note.read_text())["token"] == "f" * 32
    assert "left the project lock note" in caplog.text and "runner@gh-7" in caplog.text


def test_file_note_of_a_dead_run_is_replaced_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    note = tmp_path / ".mapt/locks/demo.json"
    note.parent.mkdir(parents=True)
    note.write_text(
        '{"user": "runner", "host": "gh-7", "pid": 4242, "operation": "create",'
        ' "since": "2026-11-22T08:00:00Z", "token": "dead"}'
    )
    with (
        caplog.at_level(logging.WARNING, logger="mapt"),
        project_lock(f"file://{tmp_path}", "demo", operation="create", timeout=0) as me,
    ):
        assert json.loads(note.read_text())["token"] == me.token
    assert "took over the project lock of 'demo' from create by runner@gh-7 (pid 4242)" in (
        caplog.text
    )
    assert not note.exists()


def test_force_on_a_file_backend_waits_for_a_live_holder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"file://{tmp_path}"
    run = project_lock(url, "demo", operation="create", timeout=0)
    me = enter(run)
    try:
        with caplog.at_level(logging.WARNING, logger="mapt"):
            assert break_project_lock(url, "demo") is None  # an OS lock cannot be broken
        assert "held by a live run (create by" in caplog.text
        assert json.loads((tmp_path / ".mapt/locks/demo.json").read_text())["token"] == me.token
    finally:
        leave(run)


# -- dead holders and leases ------------------------------------------------------------------


def test_a_holder_killed_with_sigkill_is_taken_over_naming_it(
    served_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from mapt.stacks import project_lock
        with project_lock(sys.argv[1], "demo", operation="create", timeout=5):
            print("held", flush=True)
            time.sleep(120)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, served_bucket], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        # Alive, it keeps its lock.
        with (
            pytest.raises(StateLockedError, match=rf"\(pid {child.pid}\)"),
            project_lock(served_bucket, "demo", operation="create", timeout=0),
        ):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    client, bucket = s3_of(served_bucket)
    assert note_in(client, bucket)["pid"] == child.pid  # SIGKILL left it behind

    with (
        caplog.at_level(logging.WARNING, logger="mapt"),
        project_lock(served_bucket, "demo", operation="create", timeout=0) as me,
    ):
        assert note_in(client, bucket)["token"] == me.token
    assert f"from create by {me.user}@{me.host} (pid {child.pid})" in caplog.text
    assert f"its process (pid {child.pid}) no longer runs on this host" in caplog.text


def test_a_reused_pid_does_not_keep_a_dead_holders_lock(
    aws: ApiCallLog, caplog: pytest.LogCaptureFixture
) -> None:
    s3 = in_process_s3()
    url = "s3://ci-state/team?region=us-east-1"
    alive = LockHolder.me("create")  # this very process: alive
    if not alive.process:
        pytest.skip("no /proc: only the lease can tell a dead holder here")
    machine, _, start = alive.process.rpartition("/")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=alive.to_json())
    with (
        pytest.raises(StateLockedError),
        project_lock(url, "demo", operation="create", timeout=0),
    ):
        pass
    # The same pid, but the note's process started at another time: it is gone.
    dead = dataclasses.replace(alive, process=f"{machine}/{int(start) - 1}", token="old")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=dead.to_json())
    with (
        caplog.at_level(logging.WARNING, logger="mapt"),
        project_lock(url, "demo", operation="create", timeout=0),
    ):
        assert note_in(s3)["token"] != "old"
    assert f"pid {alive.pid} is now another process on this host" in caplog.text


def test_the_lease_of_a_holder_on_another_host_expires(
    aws: ApiCallLog, caplog: pytest.LogCaptureFixture
) -> None:
    s3 = in_process_s3()
    url = "s3://ci-state/team?region=us-east-1"
    other_host = LockHolder(
        user="runner", host="gh-7", pid=4242, operation="create",
        since="2026-11-22T08:00:00Z", token="theirs", process="other-boot:pid:[1]/77",
        lease=60.0,
    )  # fmt: skip
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=other_host.to_json())
    now = [0.0]
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    # Within its lease it holds, whatever its pid does on this host.
    with (
        pytest.raises(StateLockedError, match=r"runner@gh-7 \(pid 4242\)"),
        project_lock(url, "demo", operation="create", timeout=30, sleep=nap, clock=lambda: now[0]),
    ):
        pass
    naps.clear()
    now[0] = 0.0
    with (
        caplog.at_level(logging.WARNING, logger="mapt"),
        project_lock(
            url, "demo", operation="create", timeout=300, sleep=nap, clock=lambda: now[0]
        ) as me,
    ):
        assert note_in(s3)["token"] == me.token
    assert len(naps) == 31  # unchanged for more than its 60 s lease
    assert "from create by runner@gh-7 (pid 4242)" in caplog.text
    assert "its lease expired (not renewed for 62 s; lease 60 s)" in caplog.text


def test_an_expired_lease_is_seen_at_once_by_s3s_clock(
    served_bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import moto.s3.models

    client, bucket = s3_of(served_bucket)
    stale = dataclasses.replace(LockHolder.me("create", lease=60), host="gh-7", token="old")
    real_now = moto.s3.models.utcnow
    monkeypatch.setattr(moto.s3.models, "utcnow", lambda: real_now() - timedelta(minutes=10))
    client.put_object(Bucket=bucket, Key=KEY, Body=stale.to_json())
    monkeypatch.setattr(moto.s3.models, "utcnow", real_now)
    with (
        caplog.at_level(logging.WARNING, logger="mapt"),
        project_lock(served_bucket, "demo", operation="create", timeout=0) as me,
    ):
        assert note_in(client, bucket)["token"] == me.token
    found = re.search(r"its lease expired \(not renewed for (\d+) s; lease 60 s\)", caplog.text)
    assert found is not None, caplog.text
    assert 600 <= int(found.group(1)) < 660  # ten minutes, plus this run's own slowness


def test_renewal_keeps_a_long_runs_lock(aws: ApiCallLog) -> None:
    s3 = in_process_s3()
    url = "s3://ci-state/team?region=us-east-1"
    now = [0.0]

    def nap_until_renewed(seconds: float) -> None:
        """The waiter's clock moves on only as far as the holder's renewals go."""
        now[0] += seconds
        before = s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"]
        wait_for(lambda: s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"] != before, "a renewal")

    with project_lock(url, "demo", operation="create", timeout=0, lease=10, renew_every=0.02) as me:
        # 24 s on the waiter's clock, more than twice the lease: still held.
        with (
            pytest.raises(StateLockedError, match=rf"\(pid {me.pid}\)"),
            project_lock(
                url, "demo", operation="create", timeout=24, sleep=nap_until_renewed,
                clock=lambda: now[0],
            ),
        ):  # fmt: skip
            pass
        note = note_in(s3)
        assert note["token"] == me.token and note["renewals"] >= 12 and note["lease"] == 10
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_a_renewal_every_longer_than_the_lease_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(MaptError, match="renewal every 60 s does not fit the lease of 30 s"),
        project_lock(f"file://{tmp_path}", "demo", operation="create", timeout=0, lease=30,
                     renew_every=60),
    ):  # fmt: skip
        pass
    assert not (tmp_path / ".mapt").exists()


# -- modes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_lock_folders_are_private_and_lock_files_0600(tmp_path: Path, umask: int) -> None:
    state = tmp_path / "state"  # missing: the lock creates it
    previous = os.umask(umask)
    try:
        with project_lock(f"file://{state}", "demo", operation="create", timeout=0):
            note_mode = stat.S_IMODE((state / ".mapt/locks/demo.json").stat().st_mode)
        assert break_project_lock(f"file://{state}", "demo") is None
    finally:
        os.umask(previous)
    for folder in (state, state / ".mapt", state / ".mapt/locks"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((state / ".mapt/locks/demo.lock").stat().st_mode) == 0o600
    assert note_mode == 0o600


def test_lock_folders_an_older_mapt_left_open_are_tightened(tmp_path: Path) -> None:
    locks = tmp_path / ".mapt/locks"
    locks.mkdir(parents=True)
    for folder in (tmp_path / ".mapt", locks):
        folder.chmod(0o755)
    with project_lock(f"file://{tmp_path}", "demo", operation="create", timeout=0):
        pass
    for folder in (tmp_path / ".mapt", locks):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


# -- failures: one line naming the path or bucket ---------------------------------------------


def test_a_full_disk_is_one_line_and_leaves_the_lock_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"file://{tmp_path}"
    real_write = os.write

    def full(fd: int, data: Any) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with (
        pytest.raises(OperationError) as caught,
        project_lock(url, "demo", operation="create", timeout=0),
    ):
        pytest.fail("entered the lock without a note")
    monkeypatch.setattr(os, "write", real_write)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"cannot write the project lock note {tmp_path}/.mapt/locks/demo.json"
    )
    assert "No space left on device (ENOSPC)" in message and "Free space" in message
    assert sorted(p.name for p in (tmp_path / ".mapt/locks").iterdir()) == ["demo.lock"]
    with project_lock(url, "demo", operation="create", timeout=0):  # the OS lock was released
        pass


def test_a_read_only_file_system_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(str(tmp_path)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    (tmp_path / ".mapt/locks").mkdir(parents=True)
    monkeypatch.setattr(os, "open", read_only)
    with (
        pytest.raises(OperationError) as caught,
        project_lock(f"file://{tmp_path}", "demo", operation="create", timeout=0),
    ):
        pass
    message = str(caught.value)
    assert "\n" not in message
    assert f"cannot take the project lock {tmp_path}/.mapt/locks/demo.lock" in message
    assert "Read-only file system (EROFS)" in message and "writable" in message


LOCK_IN_A_CHILD = textwrap.dedent(
    """
    import sys
    from mapt.core import MaptError
    from mapt.stacks import project_lock
    try:
        with project_lock(sys.argv[1], "demo", operation="create", timeout=0):
            pass
    except MaptError as error:
        print(int(error.exit_code), error)
    """
)


def lock_in_a_child(prefix: list[str], state: Path) -> str:
    """What a child process taking the lock of ``state`` prints: exit code and error."""
    done = subprocess.run(
        [*prefix, sys.executable, "-c", LOCK_IN_A_CHILD, f"file://{state}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stderr == ""
    return done.stdout


def test_a_state_folder_this_user_cannot_write_is_one_line() -> None:
    """Real permissions: a child process without CAP_DAC_OVERRIDE when run as root."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv cannot drop CAP_DAC_OVERRIDE")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    with tempfile.TemporaryDirectory() as folder:
        locks = Path(folder) / "state/.mapt/locks"
        locks.mkdir(parents=True)
        locks.chmod(0o500)
        try:
            printed = lock_in_a_child(prefix, Path(folder) / "state")
        finally:
            locks.chmod(0o700)
    assert printed.count("\n") == 1
    assert printed.startswith(f"1 cannot take the project lock {locks}/demo.lock")
    assert "Permission denied (EACCES)" in printed


def test_a_really_full_disk_is_one_line(tmp_path: Path) -> None:
    """A full 64 KiB tmpfs, mounted in a child's own mount namespace (needs root)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("mounting a tmpfs needs root and unshare")
    disk = tmp_path / "disk"
    disk.mkdir()
    fill_then_exec = (
        'mount -t tmpfs -o size=64k tmpfs "$1" && mkdir -p "$1/state/.mapt/locks" '
        '&& { cat /dev/zero > "$1/fill" 2>/dev/null; shift; exec "$@"; }'
    )
    probe = subprocess.run([unshare, "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare --mount is not allowed here: {probe.stderr.decode().strip()}")
    printed = lock_in_a_child([unshare, "--mount", "sh", "-c", fill_then_exec, "sh", str(disk)],
                              disk / "state")  # fmt: skip
    assert printed.count("\n") == 1
    assert printed.startswith(f"1 cannot write the project lock note {disk}/state/.mapt/locks/")
    assert "No space left on device (ENOSPC)" in printed


def test_an_unreachable_s3_endpoint_is_one_line(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    url = "s3://ci-state/team?region=us-east-1&endpoint=127.0.0.1:1&disableSSL=true"
    with (
        pytest.raises(OperationError) as caught,
        project_lock(url, "demo", operation="create", timeout=0),
    ):
        pass
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot take the project lock s3://{BUCKET}/{KEY}: ")
    assert "AWS could not be reached at http://127.0.0.1:1" in message


def test_missing_credentials_are_a_missing_prerequisite(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_SECURITY_TOKEN"):  # fmt: skip
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = "s3://ci-state/team?region=us-east-1&endpoint=127.0.0.1:1&disableSSL=true"
    with (
        pytest.raises(PrerequisiteError) as caught,
        project_lock(url, "demo", operation="create", timeout=0),
    ):
        pass
    assert caught.value.exit_code == 5
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot take the project lock s3://{BUCKET}/{KEY}: ")
    assert "no usable AWS credentials" in message
    assert "AWS_ACCESS_KEY_ID" in message
