"""Failed Pulumi CLI commands captured from a real CLI, as test data for the fake CLI.

Each ``<name>.json`` holds one failed command as ``PulumiCommand.run`` saw it: the CLI
version it came from, the arguments, stdout, stderr and exit code. What differs between
machines and runs (the state directory, user, host, pid, times, lock ids, ports, paths of
the checkout) is replaced by the fixed stand-ins in ``STAND_INS``, so a fake CLI can
replay the file and a test can name the values it expects.

``tests/stacks/real_engine/test_transcripts.py`` captures them again on the real CLI and
checks that the stored ones still match; ``MAPT_CAPTURE_TRANSCRIPTS=1`` rewrites them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pulumi.automation import CommandResult

HERE = Path(__file__).parent

# The stand-ins the stored transcripts use for what varies between runs.
STAND_INS = {
    "state": "/state",
    "user": "runner",
    "host": "gh-runner-7",
    "pid": "4242",
    "time": "2026-11-21T23:10:04Z",
    "lock_id": "0b5f1a8e-5b7a-4f1c-9a55-5a2f1f0c9d11",
}


@dataclass(frozen=True)
class Transcript:
    """One failed CLI command."""

    cli_version: str
    args: list[str]
    stdout: str
    stderr: str
    code: int

    def result(self) -> CommandResult:
        """What the fake CLI hands ``create_command_error``, as the real one does."""
        return CommandResult(self.stdout, self.stderr, self.code)

    def to_json(self) -> str:
        return json.dumps(vars(self), indent=2, sort_keys=True) + "\n"


def path(name: str) -> Path:
    return HERE / f"{name}.json"


def load(name: str) -> Transcript:
    return Transcript(**json.loads(path(name).read_text()))


def transcript(name: str) -> CommandResult:
    """The stored transcript ``name`` as a ``CommandResult``."""
    return load(name).result()
