"""What an error line says about where a bad value came from: the flag, or the
``MAPT_*`` variable it was read from, and never a URL's password.

Each case runs the real entry point's error policy through ``CliRunner`` with the
variables in ``env``; none reaches AWS or a server (every value is refused first).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.spot_market import ApiCallLog


def error_line(*args: str, env: dict[str, str] | None = None) -> str:
    """The one ``Error:`` line of ``mapt ARGS`` (exit 2, nothing on stdout)."""
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ")
    return line


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)


# -- a URL's password -----------------------------------------------------------------------


def test_a_server_url_from_the_environment_is_shown_without_its_password() -> None:
    line = error_line(
        "aws", "host", "list",
        env={"MAPT_SERVER": "http://ci:hunter2pw@127.0.0.1:1", "MAPT_TOKEN": "abc"},
    )  # fmt: skip
    assert line.startswith("Error: MAPT_SERVER=http://ci:***@127.0.0.1:1 (from the environment): ")
    assert "hunter2pw" not in line


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:s3cretpw@h/db",  # not a backend mapt supports
        "sqlite://u:s3cretpw@h",  # names no database file
        "://u:s3cretpw@h/db",  # not a URL at all
    ],
)
def test_a_database_url_is_shown_without_its_password(url: str) -> None:
    line = error_line("serve", "token", "list", env={"MAPT_DATABASE_URL": url})
    assert "s3cretpw" not in line
    assert "u:***@h" in line


def test_a_backend_url_is_shown_without_its_password() -> None:
    line = error_line("aws", "host", "list", "--backed-url", "https://u:s3cretpw@h/state")
    assert "s3cretpw" not in line
    assert "'https://u:***@h/state' is not supported" in line


# -- which variable is named ------------------------------------------------------------------

CREATE = ("aws", "host", "create", "--project-name", "p", "--os", "fedora", "--dry-run")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        # "spot increase rate" holds the word "spot": MAPT_SPOT is not the bad value.
        (("--spot-increase-rate", "-5"), {"MAPT_SPOT": "true"}),
        # "is not an AWS region" holds the word "region": MAPT_REGION is not either.
        (("--spot", "--spot-excluded-regions", "bogus"), {"MAPT_REGION": "us-east-1"}),
        # The hint suggests --ami-name: what the message is about is --version.
        (("--os", "windows", "--version", "11"), {"MAPT_AMI_NAME": "custom-image"}),
    ],
)
def test_a_variable_is_not_blamed_for_a_flags_bad_value(
    args: tuple[str, ...], env: dict[str, str], aws: ApiCallLog
) -> None:
    line = error_line(*CREATE, *args, env=env)
    assert "environment" not in line and "MAPT_" not in line, line
    assert aws.calls == []


DESTROY = ("aws", "host", "destroy", "--project-name", "p")


@pytest.mark.parametrize(
    ("args", "env", "origin"),
    [
        # Messages that word the field in prose: named by the error's field.
        ((*CREATE, "--spot"), {"MAPT_SPOT_INCREASE_RATE": "-5"}, "MAPT_SPOT_INCREASE_RATE=-5"),
        (
            (*CREATE, "--spot"),
            {"MAPT_SPOT_EVICTION_TOLERANCE": "never"},
            "MAPT_SPOT_EVICTION_TOLERANCE=never",
        ),
        ((*CREATE, "--cpus", "2"), {"MAPT_MEMORY": "0"}, "MAPT_MEMORY=0"),
        # A message naming the flag in its --no- form.
        (DESTROY, {"MAPT_WAIT": "false"}, "MAPT_WAIT=false"),
    ],
)
def test_the_variable_a_bad_value_came_from_is_named(
    args: tuple[str, ...], env: dict[str, str], origin: str, aws: ApiCallLog
) -> None:
    line = error_line(*args, env=env)
    assert line.startswith(f"Error: {origin} (from the environment): "), line
    assert aws.calls == []


@pytest.mark.parametrize(
    ("args", "env", "origin"),
    [
        # Refused while the command's values are parsed, before its body runs.
        (CREATE, {"MAPT_REGION": " "}, "MAPT_REGION= "),
        (("aws", "host", "list"), {"MAPT_SERVER": " "}, "MAPT_SERVER= "),
        # Refused by `mapt serve`'s callback, or by a token command (which sets no --debug).
        (("serve", "token", "list"), {"MAPT_DATABASE_URL": "bogus"}, "MAPT_DATABASE_URL=bogus"),
        (
            ("serve", "token", "create", "ci"),
            {"MAPT_DATABASE_URL": "sqlite://"},
            "MAPT_DATABASE_URL=sqlite://",
        ),
    ],
)
def test_a_variable_refused_before_the_command_runs_is_named(
    args: tuple[str, ...], env: dict[str, str], origin: str, aws: ApiCallLog
) -> None:
    line = error_line(*args, env=env)
    assert line.startswith(f"Error: {origin} (from the environment): "), line
    assert aws.calls == []
