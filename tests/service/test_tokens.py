"""Tokens: created once and shown once, stored hashed, required and scoped over HTTP;
a verified secret is remembered (never in plaintext) so its next requests skip scrypt."""

from __future__ import annotations

import contextlib
import json
import pickle
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapt.cli import app
from mapt.service import (
    AuthenticationError,
    ConflictError,
    Database,
    _tokens,
    authenticate,
    create_token,
    open_database,
    revoke_token,
)
from tests.harness.postgres import on_sqlite_only
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
        (["create", "0123456789ab"], "token name '0123456789ab' has the shape of a key id"),
        (["create", "x", "--expires", "٣d"], "--expires '٣d' is not a duration"),
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


def test_revoke_of_a_name_that_is_also_another_tokens_key_id_revokes_nothing(
    tmp_path: Path,
) -> None:
    # Such a name is refused now; a database from before may still hold one.
    database = open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        first, _ = create_token(database, "first")
        second, _ = create_token(database, "second")
        with database.transaction() as connection:
            connection.execute(
                _tokens.api_tokens.update()
                .where(_tokens.api_tokens.c.key_id == second.key_id)
                .values(name=first.key_id)
            )
        with pytest.raises(ConflictError, match="nothing was revoked") as refused:
            revoke_token(database, first.key_id)
        assert second.key_id in str(refused.value)
        assert all(token.revoked_at is None for token in _tokens.list_tokens(database))
        assert revoke_token(database, second.key_id).key_id == second.key_id
    finally:
        database.dispose()


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


# A token's secret, once verified against its row, is remembered (as a keyed fingerprint)
# so that its later requests skip scrypt. These count the hashes authenticate computes.


@dataclass
class Tokens:
    database: Database
    hashes: list[bytes]  # the salt of every hash computed, in order

    def create(self, name: str, lifetime: timedelta | None = None) -> str:
        return create_token(self.database, name, lifetime=lifetime)[1]

    def hashes_to_authenticate(self, presented: str) -> int:
        """How many hashes one authenticate of ``presented`` computes, refused or not."""
        before = len(self.hashes)
        with contextlib.suppress(AuthenticationError):
            authenticate(self.database, presented)
        return len(self.hashes) - before

    def verified_twice(self, name: str, lifetime: timedelta | None = None) -> str:
        """A new token authenticated twice: one hash the first time, none the second."""
        token = self.create(name, lifetime)
        assert self.hashes_to_authenticate(token) == 1
        assert self.hashes_to_authenticate(token) == 0
        assert authenticate(self.database, token).name == name
        return token


@pytest.fixture
def tokens(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tokens]:
    database = open_database(database_url)
    hashes: list[bytes] = []
    real_hash = _tokens._hash

    def counted(secret: str, salt: bytes) -> bytes:
        hashes.append(salt)
        return real_hash(secret, salt)

    monkeypatch.setattr(_tokens, "_hash", counted)
    monkeypatch.setattr(_tokens, "_verified", _tokens._VerifiedSecrets(capacity=8))
    try:
        yield Tokens(database, hashes)
    finally:
        database.dispose()


def _refusal(database: Database, presented: str) -> str:
    with pytest.raises(AuthenticationError) as refused:
        authenticate(database, presented)
    return str(refused.value)


@on_sqlite_only()
def test_a_verified_token_is_not_hashed_again(tokens: Tokens) -> None:
    first, second = tokens.verified_twice("first"), tokens.verified_twice("second")
    for _ in range(3):
        assert tokens.hashes_to_authenticate(first) == 0
        assert tokens.hashes_to_authenticate(second) == 0


@on_sqlite_only()
def test_a_memoised_token_revoked_is_refused_on_its_next_request(tokens: Tokens) -> None:
    token = tokens.verified_twice("ci")
    revoke_token(tokens.database, "ci")
    assert _refusal(tokens.database, token) == "token 'ci' is revoked"


@on_sqlite_only()
def test_a_memoised_token_expired_is_refused_on_its_next_request(
    tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tokens.verified_twice("ci", lifetime=timedelta(hours=1))
    later = datetime.now(timezone.utc) + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(_tokens, "_now", lambda: later)
    assert _refusal(tokens.database, token) == "token 'ci' is expired"


@on_sqlite_only()
def test_a_wrong_secret_for_a_memoised_key_still_costs_the_hash(tokens: Tokens) -> None:
    token = tokens.verified_twice("ci")
    key_id = token.split("_")[1]
    wrong = f"mapt_{key_id}_{secrets.token_urlsafe(32)}"
    for presented in (wrong, f"{token}x", f"mapt_{secrets.token_hex(6)}_x"):
        assert tokens.hashes_to_authenticate(presented) == 1
        assert _refusal(tokens.database, presented) == "the token is not valid"
    assert tokens.hashes_to_authenticate(token) == 0  # the right one is still remembered


@on_sqlite_only()
def test_the_memo_holds_no_secret(tokens: Tokens) -> None:
    presented = [tokens.verified_twice(name) for name in ("a", "b")]
    dump = pickle.dumps(_tokens._verified._entries) + repr(_tokens._verified.__dict__).encode()
    assert len(_tokens._verified) == 2
    for token in presented:
        secret = token.split("_", 2)[2]
        assert secret.encode() not in dump and repr(secret).encode() not in dump


@on_sqlite_only()
def test_the_memo_stays_at_its_bound_dropping_the_least_recently_used(tokens: Tokens) -> None:
    presented = [tokens.create(f"t{index}") for index in range(12)]
    for token in presented:
        assert tokens.hashes_to_authenticate(token) == 1
    assert len(_tokens._verified) == 8
    assert tokens.hashes_to_authenticate(presented[-1]) == 0
    assert tokens.hashes_to_authenticate(presented[0]) == 1  # dropped, verified again
    assert len(_tokens._verified) == 8
