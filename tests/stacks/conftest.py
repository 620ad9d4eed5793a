"""Fixtures for the stacks tests: a clean Pulumi-related environment and the fake CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stacks.fake_pulumi import FakePulumi


@pytest.fixture(autouse=True)
def clean_pulumi_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No passphrase, backend or Pulumi home from the machine running the tests."""
    for name in (
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
        "PULUMI_BACKEND_URL",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path_factory.mktemp("default-state")))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path_factory.mktemp("pulumi-home")))


@pytest.fixture
def fake_pulumi() -> FakePulumi:
    return FakePulumi()


# The passphrase in ``passphrase_home``'s file, as a CI job keeps it.
HOME_PASSPHRASE = "the-ci-passphrase"


@pytest.fixture
def passphrase_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder, also the working directory, holding a private passphrase file
    ``ci-pass``: where a relative or ``~`` PULUMI_CONFIG_PASSPHRASE_FILE is found."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    (home / "ci-pass").write_text(f"{HOME_PASSPHRASE}\n")
    (home / "ci-pass").chmod(0o600)
    return home
