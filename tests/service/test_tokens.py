"""Tokens: created once and shown once, stored hashed, required and scoped over HTTP."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.service import ServerProcess, make_token, wait_for

runner = CliRunner()


@pytest.fixture(scope="module")
def host_operations() -> bool:
    """This module's server runs only ``test.sleep``."""
    return False


def _cli(*args: str) -> object:
    return runner.invoke(app, ["serve", "token", *args])


def test_token_create_prints_the_token_alone_on_the_last_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = runner.invoke(app, ["serve", "token", "create", "ci-job", "--database-url", url])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("mapt_") and " " not in token
    assert "ci-job" in result.stdout.splitlines()[0]
    # Stored as a salted hash: the secret is nowhere in the database file.
    secret = token.rsplit("_", 1)[-1]
    raw = b"".join(Path(path).read_bytes() for path in tmp_path.glob("db.sqlite3*"))
    assert secret.encode() not in raw
    with sqlite3.connect(tmp_path / "db.sqlite3") as connection:
        rows = connection.execute("SELECT name, read_only, salt FROM api_tokens").fetchall()
    assert [(name, read_only) for name, read_only, _ in rows] == [("ci-job", 0)]
    assert len(rows[0][2]) == 16


def test_token_list_and_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    for args in (["create", "reader", "--read-only", "--expires", "30d"], ["create", "writer"]):
        assert runner.invoke(app, ["serve", "token", *args, "--database-url", url]).exit_code == 0
    listed = runner.invoke(
        app, ["serve", "token", "list", "--database-url", url, "--output", "json"]
    )
    tokens = {row["name"]: row for row in json.loads(listed.stdout)["tokens"]}
    assert tokens["reader"]["scope"] == "read-only"
    assert tokens["reader"]["expires_at"] != "-"
    assert tokens["writer"]["scope"] == "read-write" and tokens["writer"]["expires_at"] == "-"
    assert "mapt_" not in listed.stdout
    revoked = runner.invoke(app, ["serve", "token", "revoke", "reader", "--database-url", url])
    assert revoked.exit_code == 0, revoked.output
    listed = runner.invoke(
        app, ["serve", "token", "list", "--database-url", url, "--output", "json"]
    )
    states = {row["name"]: row["state"] for row in json.loads(listed.stdout)["tokens"]}
    assert states == {"reader": "revoked", "writer": "active"}
    again = runner.invoke(app, ["serve", "token", "revoke", "reader", "--database-url", url])
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines() == [
        "Error: no active token is named 'reader'. mapt serve token list shows every token."
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "bad name"], "token name 'bad name' must be"),
        (["create", "x", "--expires", "soon"], "--expires 'soon' is not a duration"),
        (["create", "x", "--expires", "0d"], "--expires '0d' must be longer than zero"),
    ],
)
def test_bad_token_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = runner.invoke(app, ["serve", "token", *args, "--database-url", url])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]


def test_a_name_in_use_is_refused_until_revoked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert (
        runner.invoke(app, ["serve", "token", "create", "ci", "--database-url", url]).exit_code == 0
    )
    taken = runner.invoke(app, ["serve", "token", "create", "ci", "--database-url", url])
    assert taken.exit_code == 2 and "token name 'ci' is taken" in taken.stderr
    runner.invoke(app, ["serve", "token", "revoke", "ci", "--database-url", url])
    assert (
        runner.invoke(app, ["serve", "token", "create", "ci", "--database-url", url]).exit_code == 0
    )


def test_a_password_on_the_command_line_is_refused() -> None:
    url = "postgresql+psycopg://mapt:hunter22@127.0.0.1:1/mapt"
    result = runner.invoke(app, ["serve", "token", "list", "--database-url", url])
    assert result.exit_code == 2
    assert "hunter22" not in result.output
    assert "--database-url carries a password" in result.stderr
    served = runner.invoke(app, ["serve", "--database-url", url, "--port", "0"])
    assert served.exit_code == 2 and "hunter22" not in served.output
    # Given to `mapt serve` before any subcommand, a token's or the event intake's.
    for command in (["token", "list"], ["teardown", "--regions", "us-east-1"]):
        before = runner.invoke(app, ["serve", "--database-url", url, *command])
        assert before.exit_code == 2, before.output
        assert "--database-url carries a password" in before.stderr
        assert "hunter22" not in before.output


def test_the_event_intakes_flags_are_refused_before_a_token_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    given = ["serve", "--events-backend", f"file://{tmp_path}", "token", "list"]
    result = runner.invoke(app, [*given, "--database-url", url])
    assert result.exit_code == 2
    assert "--events-backend and --events-secrets-provider belong to" in result.stderr
    assert not (tmp_path / "db.sqlite3").exists()


def test_ping_and_version_need_no_token_everything_else_does(shared_server: ServerProcess) -> None:
    with shared_server.client() as anonymous:
        assert anonymous.get("/v1/ping").json() == {"ping": "pong"}
        assert anonymous.get("/v1/version").status_code == 200
        refused = anonymous.get("/v1/executions")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "AuthenticationError"
        assert refused.json()["error"]["exit_code"] == 5
        assert "Bearer" in refused.headers["www-authenticate"]
        bogus = anonymous.get("/v1/executions", headers={"Authorization": "Token mapt_00_xx"})
        assert bogus.status_code == 401
        wrong_scheme = anonymous.get("/v1/executions", headers={"Authorization": "Basic YTpi"})
        assert wrong_scheme.status_code == 401


def test_the_three_token_headers(shared_server: ServerProcess, unique: str) -> None:
    token = make_token(shared_server.database_url, unique)
    for headers in (
        {"Authorization": f"Token {token}"},
        {"Authorization": f"Bearer {token}"},
        {"X-Auth-Token": token},
    ):
        with shared_server.client(**headers) as client:
            assert client.get("/v1/executions").status_code == 200, headers


def test_read_only_token_reads_but_cannot_write(shared_server: ServerProcess, unique: str) -> None:
    reader = make_token(shared_server.database_url, f"{unique}-reader", read_only=True)
    writer = make_token(shared_server.database_url, unique)
    body = {
        "name": "test.sleep",
        "target": "t",
        "arguments": {"journal": "/dev/null", "seconds": 0},
    }
    with shared_server.client(reader) as client:
        assert client.get("/v1/executions").status_code == 200
        refused = client.post("/v1/test/executions", json=body)
        assert refused.status_code == 403
        assert "read-only" in refused.json()["error"]["message"]
    with shared_server.client(writer) as client:
        assert client.post("/v1/test/executions", json=body).status_code == 202


def test_revoked_token_is_refused_at_once(shared_server: ServerProcess, unique: str) -> None:
    token = make_token(shared_server.database_url, unique)
    with shared_server.client(token) as client:
        assert client.get("/v1/executions").status_code == 200
        result = runner.invoke(
            app, ["serve", "token", "revoke", unique, "--database-url", shared_server.database_url]
        )
        assert result.exit_code == 0, result.output
        refused = client.get("/v1/executions")
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == f"token '{unique}' is revoked"


def test_the_token_is_never_logged(shared_server: ServerProcess, unique: str) -> None:
    token = make_token(shared_server.database_url, unique)
    with shared_server.client(token) as client:
        client.get("/v1/executions")
        client.get("/v1/executions", headers={"Authorization": f"Token {token}x"})
    # The request log names the token by its name; the line is written after the answer
    # is sent, so it may land a moment after the client has read it.
    named = f'"token": "{unique}"'
    text = wait_for(lambda: named in (logged := shared_server.text()) and logged)
    assert token.split("_", 2)[2] not in text  # the whole secret (it may hold "_" itself)
