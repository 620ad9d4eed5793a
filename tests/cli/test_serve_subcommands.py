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


# -- the token database ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("create", "bad name!"),
        ("create", "0123456789ab"),  # a key id's shape
        ("create", "ci", "--expires", "soon"),
    ],
)
def test_a_bad_token_is_refused_before_any_database_is_made(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = runner.invoke(app, ["serve", "token", *args, "--database-url", url])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize("args", [("list",), ("list", "-o", "json"), ("revoke", "ci")])
def test_a_missing_token_database_is_an_error_not_an_empty_one(
    args: tuple[str, ...], database_url: str, tmp_path: Path
) -> None:
    mistyped = tmp_path / "tokens.dbx"
    result = runner.invoke(app, ["serve", "token", *args, "--database-url", f"sqlite:///{mistyped}"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: no service database at {mistyped}: ")
    assert not mistyped.exists()
    # The same from the variable names it.
    result = runner.invoke(
        app, ["serve", "token", *args], env={"MAPT_DATABASE_URL": f"sqlite:///{mistyped}"}
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: MAPT_DATABASE_URL=sqlite:///")
    assert f"(from the environment): no service database at {mistyped}: " in result.stderr


def test_a_first_token_makes_its_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'first.db'}"
    made = runner.invoke(app, ["serve", "token", "create", "ci", "--database-url", url])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["serve", "token", "list", "--database-url", url, "-o", "json"])
    assert [token["name"] for token in json.loads(listed.stdout)["tokens"]] == ["ci"]


def test_token_list_in_a_pipe_cuts_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    names = ["a-token-name-of-sixty-four-characters-for-the-nightly-ci-job-001", "ci"]
    for name in names:
        made = runner.invoke(app, ["serve", "token", "create", name, "--database-url", url])
        assert made.exit_code == 0, made.output
    table = runner.invoke(
        app, ["serve", "token", "list", "--database-url", url], env={"COLUMNS": "60"}
    )
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "KEY", "SCOPE", "STATE", "CREATED", "EXPIRES", "LAST", "USED"]
    assert [row.split()[0] for row in rows] == names
    assert all("…" not in row and row.split()[2] == "read-write" for row in rows)


# -- mapt serve's own flags ------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag",
    [
        "--port",
        "--workers",
        "--recovery-attempts",
        "--pool-launches-per-minute",
        "--breaker-interruptions",
    ],
)
def test_a_servers_count_that_is_not_a_whole_number_names_its_flag_or_variable(
    flag: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    typed = runner.invoke(app, ["serve", flag, "abc", "--database-url", url])
    assert typed.exit_code == 2, typed.output
    assert typed.stderr.splitlines() == [f"Error: {flag} 'abc' is not a whole number"]
    variable = "MAPT_" + flag.lstrip("-").replace("-", "_").upper()
    from_env = runner.invoke(app, ["serve", "--database-url", url], env={variable: "abc"})
    assert from_env.exit_code == 2, from_env.output
    assert from_env.stderr.splitlines() == [
        f"Error: {variable}=abc (from the environment): {flag} 'abc' is not a whole number"
    ]
    assert not (tmp_path / "db.sqlite3").exists()
