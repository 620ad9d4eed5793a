"""``--debug`` tracebacks pass through the same redaction as every other line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi.automation import CommandResult
from typer.testing import CliRunner

from mapt.cli import app
from mapt.cli._services import Services
from mapt.stacks import PulumiEngine, StackRef
from tests.stacks.fake_pulumi import FakePulumi

PASSWORD = "Tr0ub4dor-and-3-horses"
# A failing CLI run whose transcript repeats a secret value it was given.
LEAKY_FAILURE = CommandResult(
    stdout=f"Diagnostics:\n  command:remote:Command (register):\n    running with {PASSWORD}\n",
    stderr=f"error: subscription-manager register --password {PASSWORD}: exit status 70",
    code=255,
)


@pytest.fixture
def leaky_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePulumi:
    for name in ("PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL", "MAPT_BACKED_URL"):
        monkeypatch.delenv(name, raising=False)
    # Registered for redaction the way every secret is: here, the state passphrase.
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSWORD)
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "default-state"))
    # The host stack exists; reading its outputs (the destroy's first CLI start) fails.
    fake = FakePulumi(failures={"stack export": LEAKY_FAILURE})
    fake.add_stack(StackRef("demo", "host", f"file://{tmp_path / 'state'}"))
    return fake


def test_debug_traceback_of_a_failed_pulumi_run_shows_no_secret(
    tmp_path: Path, leaky_pulumi: FakePulumi
) -> None:
    def engine(secrets_provider: str | None, debug: bool) -> PulumiEngine:
        return PulumiEngine(
            secrets_provider=secrets_provider, debug=debug, pulumi_command=leaky_pulumi
        )

    result = CliRunner().invoke(
        app,
        ["--debug", "aws", "host", "destroy", "--project-name", "demo", "--force-destroy",
         "--backed-url", f"file://{tmp_path / 'state'}"],
        obj=Services(engine=engine),
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    assert "Traceback" in result.stderr and "CommandError" in result.stderr
    assert "subscription-manager register" in result.stderr  # the transcript is shown...
    assert PASSWORD not in result.stderr and PASSWORD not in result.stdout  # ...redacted
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


def test_the_traceback_of_a_bug_is_redacted_too(tmp_path: Path, leaky_pulumi: FakePulumi) -> None:
    from mapt.core import register_secret

    register_secret(PASSWORD)

    def broken_engine(secrets_provider: str | None, debug: bool) -> PulumiEngine:
        raise KeyError(f"no engine for {PASSWORD}")  # stands in for any bug

    result = CliRunner().invoke(
        app,
        ["aws", "host", "destroy", "--project-name", "demo",
         "--backed-url", f"file://{tmp_path / 'state'}"],
        obj=Services(engine=broken_engine),
    )  # fmt: skip

    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "KeyError: 'no engine for ***'" in result.stderr
    assert PASSWORD not in result.stderr
