"""``mapt setup pulumi`` and the import cost of the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mapt.cli import app
from tests.stacks.fake_pulumi import FakePulumi

runner = CliRunner()


@pytest.fixture
def installs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """Replace the download with a recorder; no Pulumi on PATH or in the homes."""
    from pulumi.automation import PulumiCommand

    calls: list[dict[str, Any]] = []

    def install(cls: type, root: str | None = None, version: Any = None, **_: Any) -> FakePulumi:
        calls.append({"root": root, "version": version})
        fake = FakePulumi()
        fake.command = f"{root}/bin/pulumi"
        return fake

    monkeypatch.setattr(PulumiCommand, "install", classmethod(install))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return calls


def test_setup_pulumi_installs_into_pulumi_home(
    installs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "ph"))
    result = runner.invoke(app, ["setup", "pulumi"])
    assert result.exit_code == 0, result.output
    assert installs == [{"root": str(tmp_path / "ph"), "version": None}]
    assert f"Installed Pulumi CLI 3.272.0 at {tmp_path}/ph/bin/pulumi" in result.stdout


def test_setup_pulumi_with_a_version_and_root(
    installs: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["setup", "pulumi", "--version", "3.205.1", "--root", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert installs[0]["root"] == str(tmp_path) and str(installs[0]["version"]) == "3.205.1"


@pytest.mark.parametrize("version", ["latest", "3.100.0"])
def test_setup_pulumi_refuses_bad_versions(installs: list[dict[str, Any]], version: str) -> None:
    result = runner.invoke(app, ["setup", "pulumi", "--version", version])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {version!r}") or version in result.stderr
    assert installs == []


EMPTY = ": give a value, or leave the flag out"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--version", ""], "--version '' is empty" + EMPTY),
        (["--version", " "], "--version ' ' is empty" + EMPTY),
        (["--root", ""], "--root '' is empty" + EMPTY),
        (["--root", "a-file"], "--root 'a-file' is a file, not a folder"),
    ],
)
def test_setup_pulumi_refuses_an_empty_version_or_root_and_installs_nothing(
    installs: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a-file").write_text("x")
    result = runner.invoke(app, ["setup", "pulumi", *flags])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]
    assert installs == []


def test_setup_pulumi_download_failure_is_exit_5(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pulumi.automation import PulumiCommand

    def install(cls: type, **_: Any) -> None:
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(PulumiCommand, "install", classmethod(install))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    result = runner.invoke(app, ["setup", "pulumi"])
    assert result.exit_code == 5
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "installing the Pulumi CLI" in lines[0]
    assert "get.pulumi.com" in lines[0]


def test_setup_pulumi_keeps_a_usable_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\necho v3.272.0\n")
    (bin_dir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = runner.invoke(app, ["setup", "pulumi"])
    assert result.exit_code == 0, result.output
    assert "Pulumi CLI 3.272.0 is installed" in result.stdout


@pytest.mark.parametrize("argv", [["--help"], ["setup", "--help"], ["setup", "pulumi", "--help"]])
def test_help_does_not_import_pulumi_or_boto3(argv: list[str]) -> None:
    probe = (
        "import sys\n"
        "from mapt.cli import main\n"
        f"sys.argv = ['mapt', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('pulumi', 'pulumi_aws', 'boto3', 'botocore') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
