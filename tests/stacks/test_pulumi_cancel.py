"""A signal during a Pulumi operation: the CLI is asked to cancel, then ``Interrupted``.

The fake CLI's ``up`` runs a real child process standing in for ``pulumi up``: like
Pulumi, its first SIGINT starts a cancel that takes a while (in-flight operations
finish), then it exits non-zero; it reports how many SIGINTs it got (Pulumi stops at
once, state unsaved, on a second). The test process routes its own signals as the
``mapt`` command does (``stopping_on_signals``).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from pulumi.automation import CommandResult
from pulumi.automation.errors import create_command_error

from mapt.core import Interrupted, Terminated, stopping_on_signals
from mapt.stacks import PulumiEngine, StackRef
from tests.stacks.fake_pulumi import Call, FakePulumi

PULUMI_UP = """
import signal, sys, time
count = 0
def on_sigint(*_):
    global count
    count += 1
signal.signal(signal.SIGINT, on_sigint)
open(sys.argv[1], "w").close()
deadline = time.time() + 60
while not count and time.time() < deadline:
    time.sleep(0.05)
time.sleep(1)  # cancelling: a second SIGINT now would be counted
print(f"cancelled after {count} SIGINT", flush=True)
sys.exit(255 if count else 0)
"""


@pytest.mark.parametrize(
    ("number", "terminal"),
    [
        (signal.SIGTERM, False),  # a CI runner signals mapt alone
        (signal.SIGINT, True),  # Ctrl-C: the terminal signals the CLI too
    ],
)
def test_a_signal_during_up_cancels_the_cli_once_then_raises_interrupted(
    tmp_path: Path, number: int, terminal: bool
) -> None:
    script = tmp_path / "pulumi_up.py"
    script.write_text(PULUMI_UP)
    ready = tmp_path / "ready"
    said: list[str] = []

    def up(call: Call) -> None:
        out = subprocess.run(
            [sys.executable, str(script), str(ready)], capture_output=True, text=True
        )
        said.append(out.stdout.strip())
        if out.returncode:
            raise create_command_error(CommandResult(out.stdout, "error: update canceled", 255))

    def send_when_ready() -> None:
        while not ready.exists():
            time.sleep(0.05)
        if terminal:
            for child in psutil.Process().children():
                child.send_signal(number)
        os.kill(os.getpid(), number)

    engine = PulumiEngine(
        pulumi_command=FakePulumi(on_up=up), progress_stream=io.StringIO(), live=False
    )
    ref = StackRef("demo", "host", f"file://{tmp_path / 'state'}")
    sender = threading.Thread(target=send_when_ready)
    sender.start()
    started = time.monotonic()
    with pytest.raises(Interrupted) as caught, stopping_on_signals():
        engine.up(ref, lambda: None)
    sender.join()

    assert said == ["cancelled after 1 SIGINT"]  # asked once, and waited for
    assert time.monotonic() - started < 30
    assert caught.value.signal_number == number
    assert isinstance(caught.value, Terminated) == (number == signal.SIGTERM)
    assert caught.value.exit_code == (143 if number == signal.SIGTERM else 130)
    assert "update canceled" in str(caught.value.__cause__)
