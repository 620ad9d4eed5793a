"""Records: the packaged migrations build the schema the code uses, SQLite is WAL and
private, one server per SQLite file, URLs are checked before anything connects."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from mapt.core import InputError, OperationError, StateLockedError
from mapt.service import default_database_url, open_database, parse_database_url, server_lock
from mapt.service._schema import metadata
from tests.harness.postgres import needs_postgres


def test_migrations_build_exactly_the_schema_the_code_describes(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    database = open_database(database_url)
    try:
        with database.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
            revision = MigrationContext.configure(connection).get_current_revision()
    finally:
        database.dispose()
    assert differences == []
    assert revision == "0007"


def test_opening_twice_migrates_once(database_url: str) -> None:
    for _ in range(2):
        open_database(database_url).dispose()


def test_sqlite_is_wal_and_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "service.sqlite3"
    database = open_database(f"sqlite:///{path}")
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        database.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_default_database_is_a_file_in_the_user_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path / 'mapt' / 'service.sqlite3'}"


def test_a_second_server_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    other = open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        with server_lock(database):
            pid = os.fork()
            if pid == 0:  # another process, as a second server would be
                try:
                    with server_lock(other):
                        os._exit(0)
                except StateLockedError:
                    os._exit(3)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 3
        with server_lock(other):  # free again once the first server is gone
            pass
    finally:
        database.dispose()
        other.dispose()


@needs_postgres()
def test_postgresql_servers_share_a_database(postgres_url: str) -> None:
    first, second = open_database(postgres_url), open_database(postgres_url)
    try:
        with server_lock(first), server_lock(second):
            pass
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mysql://x@y/z", "--database-url 'mysql://x@y/z' uses 'mysql'"),
        ("sqlite://", "names no database file"),
        ("not a url", "is not a database URL"),
    ],
)
def test_bad_urls_name_the_flag_and_the_value(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_database_url(text)


def test_plain_postgresql_urls_mean_psycopg() -> None:
    assert parse_database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


def test_an_unreachable_server_is_one_error_without_the_password() -> None:
    with pytest.raises(OperationError) as raised:
        open_database("postgresql+psycopg://mapt:s3cret-pw@127.0.0.1:1/mapt")
    assert "s3cret-pw" not in str(raised.value)
    assert str(raised.value).startswith("cannot open the database postgresql+psycopg://mapt:***@")


def test_schema_objects_exist(database_url: str) -> None:
    database = open_database(database_url)
    try:
        names = set(sa.inspect(database.engine).get_table_names())
    finally:
        database.dispose()
    assert {
        "api_tokens",
        "executions",
        "execution_logs",
        "hosts",
        "pools",
        "leases",
        "alembic_version",
    } <= names
