"""The passphrase secrets provider on the real engine, reopened from fresh workspaces."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pulumi
import pytest

from mapt.core import PrerequisiteError
from mapt.stacks import PASSPHRASE_FILE_NAME, PulumiEngine, StackRef
from tests.stacks.real_engine.conftest import RealCli, leftovers

SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA"


def engine() -> PulumiEngine:
    return PulumiEngine(progress_stream=io.StringIO(), live=False)


def with_a_secret() -> None:
    pulumi.export("host", "10.0.0.5")
    pulumi.export("id_rsa", pulumi.Output.secret(SECRET))


def state_text(state: Path) -> str:
    return "".join(p.read_text() for p in (state / ".pulumi").rglob("*.json"))


def reopened(ref: StackRef) -> None:
    """Every operation runs in a new temporary workspace: these all start from nothing."""
    assert engine().exists(ref)
    assert engine().outputs(ref) == {"host": "10.0.0.5", "id_rsa": SECRET}
    assert engine().up(ref, with_a_secret)["id_rsa"] == SECRET


def test_a_generated_passphrase_file_encrypts_and_reopens(
    real_cli: RealCli, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    ref = StackRef("demo", "host", f"file://{state}")
    assert engine().up(ref, with_a_secret)["id_rsa"] == SECRET
    passphrase = state / PASSPHRASE_FILE_NAME
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    text = state_text(state)
    assert SECRET not in text and "4dabf18193072939515e22adb298388d" in text  # encrypted
    reopened(ref)
    assert engine().destroy(ref) is True
    assert leftovers(real_cli) == []


@pytest.mark.parametrize("how", ["PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"])
def test_the_callers_passphrase_encrypts_and_reopens(
    real_cli: RealCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    state = tmp_path / "state"
    ref = StackRef("demo", "host", f"file://{state}")
    if how == "PULUMI_CONFIG_PASSPHRASE":
        monkeypatch.setenv(how, "correct horse battery staple")
    else:
        path = tmp_path / "passphrase"
        path.write_text("correct horse battery staple\n")
        path.chmod(0o600)
        monkeypatch.setenv(how, str(path))
    engine().up(ref, with_a_secret)
    assert not (state / PASSPHRASE_FILE_NAME).exists()  # none generated
    assert SECRET not in state_text(state)
    reopened(ref)

    # Another passphrase cannot decrypt the stack: a missing prerequisite, exit 5.
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "not the one")
    with pytest.raises(PrerequisiteError) as caught:
        engine().outputs(ref)
    assert caught.value.exit_code == 5
    assert "passphrase" in str(caught.value) and "not the one" not in str(caught.value)
    assert leftovers(real_cli) == []


@pytest.mark.parametrize("named", ["ci-pass", "~/ci-pass"])
def test_a_relative_or_home_passphrase_file_reaches_the_cli(
    real_cli: RealCli,
    passphrase_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    named: str,
) -> None:
    """The CLI runs in a temporary workspace directory and expands no ``~``: it reads
    the file mapt found in its own working directory."""
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", named)
    ref = StackRef("demo", "host", f"file://{tmp_path / 'state'}")
    assert engine().up(ref, with_a_secret)["id_rsa"] == SECRET
    assert engine().outputs(ref)["id_rsa"] == SECRET
    assert engine().destroy(ref) is True
    assert leftovers(real_cli) == []
