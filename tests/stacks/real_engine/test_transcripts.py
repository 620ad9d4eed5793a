"""The CLI transcripts the fake CLI replays (tests/stacks/transcripts) match the real CLI's.

Each failure is produced on the real CLI and recorded where the SDK turns the command's
result into an error (``create_command_error``). With ``MAPT_CAPTURE_TRANSCRIPTS=1`` the
stored files are rewritten; otherwise, on the CLI version they came from, the parts mapt
reads (exit code, stderr, the ``error:`` lines of stdout) must be unchanged, and on any
version what mapt makes of them (the error class and its line) must be the same.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest
from pulumi.automation import CommandResult, _cmd

from mapt.core import MaptError
from mapt.stacks import PulumiEngine, StackRef, map_command_error
from tests.stacks import transcripts
from tests.stacks.real_engine.conftest import RealCli
from tests.stacks.real_engine.test_locks import wait_for
from tests.stacks.transcripts import STAND_INS, Transcript

REPO = Path(__file__).resolve().parents[3]
LOCK_TIME = re.compile(r"\(pid \d+\) at \S+")


def engine() -> PulumiEngine:
    return PulumiEngine(progress_stream=io.StringIO(), live=False)


def exporting() -> None:
    pulumi.export("az", "eu-north-1a")
    pulumi.export("id_rsa", pulumi.Output.secret("PRIVATE-KEY-TEXT"))  # needs the passphrase


def failing() -> None:
    raise ValueError("subnet cidr 10.0.300.0/24 is invalid")


class Recorder:
    """Keeps every failed command's args and result, then lets the SDK raise as usual."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failed: list[tuple[list[str], CommandResult]] = []
        real = _cmd.create_command_error
        original_run = _cmd.PulumiCommand.run
        args_seen: list[list[str]] = []

        def run(self_: _cmd.PulumiCommand, args: list[str], *rest: object, **kw: object) -> object:
            args_seen.append(list(args))
            return original_run(self_, args, *rest, **kw)  # type: ignore[arg-type]

        def record(result: CommandResult) -> object:
            self.failed.append((args_seen[-1], result))
            return real(result)

        monkeypatch.setattr(_cmd.PulumiCommand, "run", run)
        monkeypatch.setattr(_cmd, "create_command_error", record)

    def last(self) -> tuple[list[str], CommandResult]:
        return self.failed[-1]


def normalize(text: str, replacements: dict[str, str]) -> str:
    for value, stand_in in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(value, stand_in)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    return LOCK_TIME.sub(f"(pid {STAND_INS['pid']}) at {STAND_INS['time']}", text)


def raw_reading(transcript: Transcript) -> tuple[int, str, list[str]]:
    """The parts mapt reads: exit code, stderr, the ``error:`` lines of stdout."""
    errors = [line.strip() for line in transcript.stdout.splitlines() if "error:" in line]
    return transcript.code, transcript.stderr, errors


def mapt_reading(transcript: Transcript) -> tuple[str, str, str]:
    """What mapt makes of the transcript: the SDK's error class, mapt's class and line."""
    from pulumi.automation.errors import create_command_error

    result = CommandResult(stdout=transcript.stdout, stderr=transcript.stderr, code=transcript.code)
    error = create_command_error(result)
    mapped = map_command_error(
        error, stack_name="host-demo", backend_url=STAND_INS["state"], operation="up"
    )
    return type(error).__name__, type(mapped).__name__, str(mapped)


def keep(
    name: str, cli: RealCli, failed: tuple[list[str], CommandResult], swaps: dict[str, str]
) -> None:
    """Store the transcript (capturing), or check the stored one against it."""
    args, result = failed
    where = {str(REPO): "/mapt", sys.prefix: "/venv", sys.base_prefix: "/python"}
    swaps = {**swaps, **where, str(cli.tmp): "/tmp"}
    fresh = Transcript(
        cli_version=cli.version,
        args=[normalize(a, swaps) for a in args],
        stdout=normalize(result.stdout, swaps),
        stderr=normalize(result.stderr, swaps),
        code=result.code,
    )
    if os.environ.get("MAPT_CAPTURE_TRANSCRIPTS") == "1":
        transcripts.path(name).write_text(fresh.to_json())
        return
    stored = transcripts.load(name)
    # On the version it came from, the transcript is what the CLI prints today; on
    # another (.ci/run also runs the oldest CLI mapt accepts) the wording and exit code
    # may differ (3.205 exits 255 where 3.276 exits 6), but not what mapt makes of it.
    # The arguments too: older CLIs take the event log as a file, newer ones over gRPC.
    if stored.cli_version == cli.version:
        assert raw_reading(fresh) == raw_reading(stored)
        assert fresh.args == stored.args
    assert mapt_reading(fresh) == mapt_reading(stored)


def raised(action: Callable[[], object]) -> MaptError:
    with pytest.raises(MaptError) as caught:
        action()
    return caught.value


def test_transcripts_match_the_real_cli(
    real_cli: RealCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    ref = StackRef("demo", "host", f"file://{state}")
    swaps = {str(state): STAND_INS["state"]}
    recorder = Recorder(monkeypatch)

    # The CLI's answer for a stack removed after mapt found it in the backend (mapt
    # reads a missing one there itself and starts no CLI).
    with monkeypatch.context() as removed_meanwhile:
        removed_meanwhile.setattr(PulumiEngine, "exists", lambda self, ref: True)
        raised(lambda: engine().outputs(ref))
    keep("stack_not_found", real_cli, recorder.last(), swaps)

    raised(lambda: engine().up(ref, failing))
    keep("program_error", real_cli, recorder.last(), swaps)

    # A lock left by a run that died: the real lock file of a run that was holding it.
    release, running = threading.Event(), threading.Event()

    def holding() -> None:
        exporting()
        running.set()
        release.wait(60)

    holder = threading.Thread(target=lambda: engine().up(ref, holding))
    holder.start()
    try:
        wait_for(running.is_set, "the first up to run its program")
        [lock] = engine().list_locks(ref)
        lock_file = Path(lock.removeprefix("file://"))
        saved = tmp_path / "lock.json"
        shutil.copy(lock_file, saved)
    finally:
        release.set()
        holder.join(120)
    shutil.copy(saved, lock_file)
    note = json.loads(saved.read_text())
    raised(lambda: engine().up(ref, exporting))
    lock_swaps = {
        **swaps,
        lock_file.stem: STAND_INS["lock_id"],
        f"{note['username']}@{note['hostname']}": f"{STAND_INS['user']}@{STAND_INS['host']}",
    }
    keep("locked", real_cli, recorder.last(), lock_swaps)
    assert engine().force_unlock(ref) == [lock]

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not the one")
    raised(lambda: engine().outputs(ref))
    keep("incorrect_passphrase", real_cli, recorder.last(), swaps)
