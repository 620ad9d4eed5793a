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
