"""Private folders and files: 0700 and 0600 whatever the umask, written all at once.

State folders, lock notes, the passphrase file and connection files hold what only
their user may read. ``mkdir``'s and ``open``'s modes are masked by the umask (and
``Path.mkdir(parents=True)`` gives the parents the plain umask mode, 0777 under
umask 0), so every folder and file is set to its mode explicitly after creation. A
file is written under a temporary name in its folder and then moved into place, so a
reader never sees half of it and a symlink planted at the name is replaced, not
written through.
"""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Make directory ``path`` exist; every folder this creates (parents too) is 0700.

    Folders that already exist are left as they are: they may be the user's.
    Raises ``OSError`` (``NotADirectoryError`` when a file stands at ``path``).
    """
    missing: list[Path] = []
    folder = path
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another run made it meanwhile, the same way
        os.chmod(folder, PRIVATE_DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))


def write_private_file(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` (mode 0600) through a temporary file in its folder.

    With ``replace`` an existing file is replaced; without it an existing file is
    kept (another run wrote it first) and False is returned. The data is on disk
    (fsync) before it takes the name. Raises ``OSError``; no temporary file is left.
    """
    import secrets  # here, not at the top: `mapt --help` never writes a file

    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        try:
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        with suppress(OSError):
            temporary.unlink()
