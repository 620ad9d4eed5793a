"""Where the service keeps its records, how it connects, and the schema migrations.

SQLite by default: a file in the user's mapt data directory, in WAL mode so readers
never wait for the writer; one server at a time (``server_lock`` refuses a second).
PostgreSQL (``postgresql+psycopg://...``) for several servers behind a load balancer.
Migrations ship inside the package and are applied whenever a database is opened, under
a lock (an advisory lock on PostgreSQL, the write lock on SQLite), so servers started
together migrate once.

A password does not belong in ``--database-url``, where every user of the machine sees
it in the process list: put the URL in ``MAPT_DATABASE_URL``, or the password in
``PGPASSWORD`` or ``~/.pgpass``, which libpq reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mapt.core import (
    InputError,
    OperationError,
    StateLockedError,
    make_private_dir,
    uninterrupted,
    without_password,
)

DATABASE_FILE = "service.sqlite3"
# Any constant shared by every mapt server: the PostgreSQL advisory lock around migrations.
_MIGRATION_LOCK = 0x6D617074  # "mapt"
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_MIGRATIONS = Path(__file__).parent / "migrations"


def default_database_url() -> str:
    """``sqlite:///<user data dir>/mapt/service.sqlite3``, the single-server default."""
    from platformdirs import user_data_path

    return f"sqlite:///{user_data_path('mapt', appauthor=False) / DATABASE_FILE}"


def parse_database_url(text: str, *, flag: str = "--database-url") -> sa.URL:
    """``text`` as a URL of a database the service supports, or an ``InputError``.

    ``postgresql://`` and ``postgres://`` mean psycopg 3, the driver mapt ships.
    """
    echoed = without_password(text)  # how the messages show it
    try:
        url = sa.make_url(text.strip())
    except sa.exc.ArgumentError:
        raise InputError(
            f"{flag} {echoed!r} is not a database URL: write sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DATABASE"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if not url.database or url.database == ":memory:":
            raise InputError(
                f"{flag} {echoed!r} names no database file: write sqlite:///PATH "
                "(an in-memory database would lose every record when the server stops)"
            )
        return url.set(drivername="sqlite")
    raise InputError(
        f"{flag} {echoed!r} uses {url.drivername!r}: mapt keeps its records in SQLite "
        "(sqlite:///PATH) or PostgreSQL (postgresql+psycopg://...)"
    )


def refuse_password_in_arguments(url: sa.URL, *, flag: str = "--database-url") -> None:
    """Refuse a URL with a password given on the command line (see the module doc)."""
    if url.password:
        raise InputError(
            f"{flag} carries a password, which other users see in the process list",
            hint="Put the URL in MAPT_DATABASE_URL, or the password in PGPASSWORD or ~/.pgpass.",
        )


@dataclass(frozen=True)
class Database:
    """An open database: its URL (password hidden when shown) and SQLAlchemy engine."""

    url: sa.URL
    engine: sa.Engine

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url.database or "").absolute() if self.is_sqlite else None

    def shown(self) -> str:
        """The URL as it may appear in logs and messages (no password)."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection in one transaction: committed at the end, rolled back on error.

        A stop signal does not cut it (``uninterrupted``): one raised mid-query leaves
        the connection busy, its rollback then fails and replaces the stop, and the pool
        logs and drops the rollback's failure; the stop is raised once it has ended.
        """
        with uninterrupted(), self.engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str | sa.URL | None = None, *, migrate: bool = True) -> Database:
    """Connect to ``url`` (default: the SQLite file in the data directory) and migrate it.

    Raises ``OperationError`` when the database cannot be reached or migrated, naming
    the URL without its password.
    """
    parsed = url if isinstance(url, sa.URL) else parse_database_url(url or default_database_url())
    database = Database(url=parsed, engine=_engine(parsed))
    try:
        if migrate:
            with _reached(database):
                _migrate(database)
        else:
            with _reached(database), database.engine.connect():
                pass
    except BaseException:
        database.dispose()
        raise
    return database


@contextmanager
def _reached(database: Database) -> Iterator[None]:
    """Turn "cannot connect" into an ``OperationError`` naming the URL (no password)."""
    try:
        yield
    except sa.exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise OperationError(
            f"cannot open the database {database.shown()}: {reason}",
            hint="Check --database-url (or MAPT_DATABASE_URL) and that the server is up.",
        ) from None


def migrate(database: Database) -> str:
    """Apply the packaged migrations up to the newest; returns the revision reached."""
    with _reached(database):
        return _migrate(database)


def _engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    path = Path(url.database or "").absolute()
    try:
        make_private_dir(path.parent)
    except OSError as error:
        raise OperationError(
            f"cannot create the folder of the database {path}: {error.strerror}"
        ) from error
    # Created private before SQLite opens it (its -wal and -shm files take its mode).
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    engine = sa.create_engine(
        url.set(database=str(path)),
        connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    sa.event.listen(engine, "connect", _sqlite_connected)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connected(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never wait for the writer), foreign keys, and our own transactions."""
    # SQLAlchemy then emits BEGIN itself (_sqlite_begin), instead of the driver's
    # deferred BEGIN that fails at once when a reader upgrades to a writer.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    """Take the write lock at the start: transactions then queue, none fails midway."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _migrate(database: Database) -> str:
    """Apply the packaged migrations up to the newest, once even with servers racing."""
    from alembic import command
    from alembic.config import Config
    from alembic.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with database.transaction() as connection:
        if not database.is_sqlite:
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        revision = MigrationContext.configure(connection).get_current_revision()
    return revision or ""


@contextmanager
def server_lock(database: Database) -> Iterator[None]:
    """Be the only server on a SQLite file for the block; PostgreSQL takes several.

    The lock is a file beside the database, held open for the server's life and
    released by the operating system when the process ends, however it ends.
    """
    path = database.sqlite_path
    if path is None:
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(f"{path}.server-lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise StateLockedError(
            f"another mapt serve is using the database {path}",
            hint="SQLite serves one server; run several servers on PostgreSQL "
            "(--database-url postgresql+psycopg://...).",
        ) from None
    try:
        os.chmod(f"{path}.server-lock", 0o600)
        yield
    finally:
        lock.release()
