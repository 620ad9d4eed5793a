"""SIGTERM and SIGINT during ``mapt aws host create``: stop, release the lock, say what to do.

The create runs in a subprocess on the in-memory engine, under moto's in-process AWS,
through the real CLI (``mapt.cli._app.app`` with ``Services``), and blocks in its
readiness wait, as a host that boots slowly would. The test sends the signal there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.host_harness import FAMILIES
from tests.conftest import FAKE_CREDENTIALS

REPO = Path(__file__).resolve().parents[2]

CREATE = """
import sys, time
from moto import mock_aws

from mapt.cli._app import app
from mapt.cli._services import Services
from mapt.stacks import InMemoryEngine
from tests.harness.pulumi_mocks import default_answers, default_computed

engine = InMemoryEngine(answers=default_answers(), computed=default_computed)

def slow_boot(access):
    print("waiting for the host", flush=True)
    time.sleep(600)

with mock_aws():
    app(
        sys.argv[1:],
        obj=Services(engine=lambda *_: engine, readiness=slow_boot, launch=lambda *_: "i-0"),
        prog_name="mapt",
    )
"""


def create_and_signal(tmp_path: Path, signal_number: int) -> tuple[int, str, Path]:
    state = tmp_path / "state"
    script = tmp_path / "create.py"
    script.write_text(CREATE)
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAPT_"))}
    env.update(FAKE_CREDENTIALS)
    env.update(
        PYTHONPATH=str(REPO),
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        MOTO_EC2_LOAD_DEFAULT_AMIS="false",
        MAPT_STATE_DIR=str(tmp_path / "default-state"),
    )
    args = [
        "aws", "host", "create", "--os", "fedora", "--project-name", "demo",
        "--backed-url", f"file://{state}", "--region", "eu-north-1", "--cpus", "2",
        "--memory", "8", "--compute-families", FAMILIES,
    ]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "waiting for the host", process.stderr.read()  # type: ignore[union-attr]
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr, state


@pytest.mark.parametrize(
    ("signal_number", "exit_code", "name"),
    [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")],
)
def test_a_signal_stops_create_releases_the_lock_and_prints_the_destroy_command(
    tmp_path: Path, signal_number: int, exit_code: int, name: str
) -> None:
    from mapt.stacks import project_lock

    returncode, stderr, state = create_and_signal(tmp_path, signal_number)

    assert returncode == exit_code, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    assert f"interrupted by {name}" in errors[0]
    assert f"mapt aws host destroy --project-name demo --backed-url file://{state}" in errors[0]
    assert stderr.strip().splitlines()[-1] == errors[0]
    # The lock is released: its holder's note is gone and the next run enters at once.
    locks = state / ".mapt" / "locks"
    assert [p.name for p in locks.iterdir() if p.suffix == ".json"] == []
    with project_lock(f"file://{state}", "demo", operation="create", timeout=0):
        pass
