"""``mapt serve``'s subcommands (token create|list|revoke, setup) and its own flags'
errors, run through ``CliRunner`` on SQLite files in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapt.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("MAPT_DATABASE_URL", raising=False)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A token database that exists, holding the token ``ci``."""
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    made = runner.invoke(app, ["serve", "token", "create", "ci", "--database-url", url])
    assert made.exit_code == 0, made.output
    return url


# The server's own variables, as a CI job running `mapt serve` sets them.
SERVER_VARIABLES = {
    "MAPT_PORT": "8080",
    "MAPT_WORKERS": "4",
    "MAPT_DNS_ZONE": "ci.example.com",
    "MAPT_SANDBOX": "1",
}


def test_the_servers_variables_do_not_stop_its_subcommands(database_url: str) -> None:
    listed = runner.invoke(
        app, ["serve", "token", "list", "--database-url", database_url, "-o", "json"],
        env=SERVER_VARIABLES,
    )  # fmt: skip
    assert listed.exit_code == 0, listed.output
    assert [token["name"] for token in json.loads(listed.stdout)["tokens"]] == ["ci"]
    # `mapt serve setup` reads MAPT_SANDBOX as its own --sandbox: refused by that check
    # (no endpoint on 127.0.0.1), not as a flag of mapt serve's.
    setup = runner.invoke(app, ["serve", "setup", "--regions", "us-east-1"], env=SERVER_VARIABLES)
    assert setup.exit_code == 2
    assert setup.stderr.startswith("Error: MAPT_SANDBOX=1 (from the environment): --sandbox")


def test_a_servers_flag_typed_before_a_subcommand_is_still_refused(database_url: str) -> None:
    result = runner.invoke(
        app, ["serve", "--port", "8080", "token", "list", "--database-url", database_url]
    )
    assert result.exit_code == 2
    assert "belong to mapt serve itself, not to mapt serve token" in result.stderr
