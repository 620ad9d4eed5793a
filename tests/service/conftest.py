"""The service's tests run on SQLite and on a real PostgreSQL server.

PostgreSQL is the one ``.ci/run`` starts (``MAPT_TEST_POSTGRES_URL``), or else one this
session starts itself from Debian's package (``tests/harness/postgres.py``); without
either, the PostgreSQL cases skip through the skip guard. Each test gets a database of
its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import postgres
from tests.harness.service import ServerProcess, running


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database."""
    given = os.environ.get(postgres.URL_VARIABLE)
    if given:
        yield given
        return
    folder, url = postgres.start()
    try:
        yield url
    finally:
        postgres.stop(folder)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped after the test."""
    import sqlalchemy as sa

    name = f"mapt_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=postgres.needs_postgres())],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records' / 'service.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A running server with the test operations, on this test's database."""
    with running(ServerProcess(database_url, tmp_path / "server.log")) as started:
        yield started
