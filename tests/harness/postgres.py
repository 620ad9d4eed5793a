"""A throwaway PostgreSQL server on 127.0.0.1, for the service's tests and ``.ci/run``.

``initdb`` makes a cluster in a temporary folder and ``pg_ctl`` starts it on a free
port, listening on 127.0.0.1 only, with trust authentication for this one local
server (no password exists to leak). PostgreSQL refuses to run as root: as root, the
cluster belongs to the ``postgres`` user that Debian's package creates.

``python -m tests.harness.postgres start`` starts one and prints its folder and its URL
(what ``MAPT_TEST_POSTGRES_URL`` holds); ``python -m tests.harness.postgres stop DIR``
stops it and removes the folder. The folder is a fresh one under the system's temporary
directory, which the ``postgres`` user can reach (a test's own folder is private).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness.skips import needs_program

INITDB_GLOB = "/usr/lib/postgresql/*/bin/initdb"
URL_VARIABLE = "MAPT_TEST_POSTGRES_URL"
_USER = "postgres"


def needs_postgres() -> pytest.MarkDecorator:
    """The skip guard's mark for a test that needs PostgreSQL: none when .ci/run gave one."""
    if os.environ.get(URL_VARIABLE):
        return pytest.mark.skipif(False, reason="PostgreSQL is given")
    return needs_program(INITDB_GLOB)


def on_sqlite_only(fixture: str = "database_url") -> pytest.MarkDecorator:
    """Run a test on SQLite alone, not on both databases: ``fixture`` is one of
    ``tests/service/conftest.py``'s database fixtures (``database_url``, or
    ``shared_database_url`` for the tests of a module's shared server).

    For a test whose meaning does not depend on how the database answers (an HTTP
    answer's shape, worker processes, a deployment's steps): what SQL does differently
    on PostgreSQL (claims, locks, concurrent servers, row counting) is tested by the
    tests that keep both. See specs/concepts/architecture.md, "Suite speed"."""
    scope = "module" if fixture.startswith("shared_") else "function"
    return pytest.mark.parametrize(fixture, ["sqlite"], indirect=True, scope=scope)


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob(INITDB_GLOB), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], *, owner: pwd.struct_passwd | None) -> None:
    extra = {"user": owner.pw_uid, "group": owner.pw_gid} if owner else {}
    result = subprocess.run(args, capture_output=True, text=True, check=False, **extra)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip() or result.stdout}")


def _owner() -> pwd.struct_passwd | None:
    return pwd.getpwnam(_USER) if os.geteuid() == 0 else None


def start() -> tuple[Path, str]:
    """Start a cluster in a new folder: the folder, and the server's SQLAlchemy URL."""
    binaries = bin_dir()
    if binaries is None:
        raise RuntimeError(f"PostgreSQL is not installed (no {INITDB_GLOB})")
    owner = _owner()
    folder = Path(tempfile.mkdtemp(prefix="mapt-test-postgres-"))
    data = folder / "data"
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    user = owner.pw_name if owner else pwd.getpwuid(os.geteuid()).pw_name
    _run(
        [str(binaries / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8"],
        owner=owner,
    )
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
    log = str(folder / "log")
    _run(
        [str(binaries / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "start"],
        owner=owner,
    )
    return folder, f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"


def stop(folder: Path) -> None:
    binaries = bin_dir()
    if binaries is None or not (folder / "data").exists():
        return
    command = [str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"]
    _run(command, owner=_owner())
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "start":
        print(*start())
    elif action == "stop" and len(sys.argv) == 3:
        stop(Path(sys.argv[2]))
    else:
        sys.exit(f"usage: python -m tests.harness.postgres start|stop DIR (not {action!r})")
