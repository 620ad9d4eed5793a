"""The service's tests run on SQLite and on a real PostgreSQL server, except those marked
``on_sqlite_only`` (``tests/harness/postgres.py``): what they check is not what SQL does
(``specs/concepts/architecture.md``, "Which service tests run on both databases").

PostgreSQL is the one ``.ci/run`` starts (``MAPT_TEST_POSTGRES_URL``), or else one this
session starts itself from Debian's package (``tests/harness/postgres.py``); without
either, the PostgreSQL cases skip through the skip guard.

Two kinds of server: ``server`` is a test's own, on an empty database of its own, for
tests that stop, kill or restart it or that read what the whole database holds;
``shared_server`` is one per module and database, for tests that only talk to it: each
names its own targets and hosts (``unique``) and leaves nothing running
(``shared_client``), so a server's start (a process, its imports, its migrations) is paid
once per module instead of once per test. A module whose tests run only the test
operations says so (``host_operations``): its servers' forkservers then preload nothing of
the host operations'.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.harness import postgres
from tests.harness.service import ServerProcess, make_token, running, settled
from tests.harness.service_hosts import HOLD_HOST_UP

_DATABASES = ["sqlite", pytest.param("postgresql", marks=postgres.needs_postgres())]


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


@contextmanager
def _fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server, dropped after the block."""
    import sqlalchemy as sa

    name = f"mapt_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped after the test."""
    with _fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(params=_DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records' / 'service.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module")
def host_operations() -> bool:
    """Whether the module's servers register the simulated host and pool operations
    besides the test operations; a module that runs none overrides this with False."""
    return True


@pytest.fixture
def server(database_url: str, tmp_path: Path, host_operations: bool) -> Iterator[ServerProcess]:
    """A running server with the test operations, on this test's database."""
    server = ServerProcess(database_url, tmp_path / "server.log", host_operations=host_operations)
    with running(server) as started:
        yield started


@pytest.fixture(scope="module", params=_DATABASES)
def shared_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a database for one module's shared server, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("shared-records")
        yield f"sqlite:///{folder / 'service.sqlite3'}"
        return
    with _fresh_postgres_database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture(scope="module")
def shared_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory, host_operations: bool
) -> Iterator[ServerProcess]:
    """One running server with the test operations for a module's tests that neither stop
    it nor count what the whole database holds; a test holds a host's create midway
    with ``tests.harness.service_hosts.hold_host_up``."""
    folder = tmp_path_factory.mktemp("shared-server")
    server = ServerProcess(
        shared_database_url,
        folder / "server.log",
        host_operations=host_operations,
        env={HOLD_HOST_UP: str(folder / "holds")},
    )
    with running(server) as started:
        yield started


@pytest.fixture(scope="module")
def shared_token(shared_server: ServerProcess) -> str:
    """A writer's token on the shared server (named once: token names are unique)."""
    return make_token(shared_server.database_url, "ci")


@pytest.fixture
def shared_client(
    shared_server: ServerProcess, shared_token: str, tmp_path: Path
) -> Iterator[httpx.Client]:
    """A writer's client of the shared server; after the test, whatever it left active is
    cancelled and waited for, so the next test finds both worker slots free. (It holds
    ``tmp_path``, so the test's folder, where its executions write, goes after them.)"""
    with shared_server.client(shared_token) as opened:
        yield opened
        settled(opened)


@pytest.fixture
def unique() -> str:
    """A short name no other test on a shared server uses (for targets and hosts)."""
    return f"t{secrets.token_hex(3)}"
