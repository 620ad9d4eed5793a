"""Connection files: the values a CI job needs to reach a machine, one file per value.

Scripts written for the Go mapt read ``<dir>/host``, ``<dir>/username``,
``<dir>/id_rsa`` and so on with ``cat``; the names, one value per file, the trailing
newline and mode 0600 (``ssh -i`` refuses a key others can read) are kept.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path

from mapt.core import (
    InputError,
    OperationError,
    get_logger,
    make_private_dir,
    shown,
    write_private_file,
)

log = get_logger(__name__)

# File names a target may write; also keeps a name from reaching outside the folder.
_FILE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_FOLDER_HINT = "Pass --conn-details-output a folder you can write to."


def check_connection_folder(folder: str | os.PathLike[str]) -> Path:
    """Refuse a connection details folder mapt could not write into, before any work.

    The folder must be a writable directory, or not exist yet under a writable
    directory (it is created at the end). Writability is proved by creating and
    removing a temporary folder there, because permission bits lie (root, read-only
    mounts, ``/proc``); nothing is left behind. Called before anything is created, so
    a typo costs nothing: this is the check whose failure is bad input (exit 2).
    """
    text = os.fspath(folder)
    if not text.strip():
        raise InputError("connection details folder '' is empty", hint=_FOLDER_HINT)
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise InputError(
            f"connection details folder {shown(str(path))} is a file, not a folder",
            hint=_FOLDER_HINT,
        )
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"connection details folder {shown(str(path))} cannot be created: "
            f"{shown(str(existing))} is a file",
            hint=_FOLDER_HINT,
        )
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".mapt-check-").cleanup()
    except OSError as err:
        where = "" if existing == path else f" (in {shown(str(existing))})"
        raise InputError(
            f"connection details folder {shown(str(path))} is not writable{where}: "
            f"{err.strerror or err}",
            hint=_FOLDER_HINT,
        ) from err
    return path


def write_connection_files(
    folder: str | os.PathLike[str], values: Mapping[str, str], *, known: Collection[str]
) -> list[Path]:
    """Write each value to ``folder/<name>`` with a trailing newline and mode 0600.

    The folder (and missing parents) is created mode 0700 if missing. Each file is
    written under a temporary name and renamed into place, so a reader never sees half
    a key and an existing file (or a symlink planted there) is replaced, not written
    through. ``known`` is every name a connection of this kind may have (the target's,
    e.g. ``CONNECTION_OUTPUTS``): those ``values`` lacks are removed once the values
    are written, so a folder reused from another host (one with a bastion, a password,
    a DNS name) is not left holding that host's files beside this one's; no other file
    of the folder is touched. Returns the paths written, in ``values`` order.

    It runs once the machine exists, after ``check_connection_folder`` accepted the
    folder: a folder that cannot be written now (made a file meanwhile, the disk full)
    is an ``OperationError``, not bad input, so the caller can say what to destroy.
    """
    path = Path(folder)
    try:
        make_private_dir(path)
    except OSError as err:
        raise OperationError(
            f"cannot create the connection details folder {shown(str(path))}: "
            f"{err.strerror or err}",
            hint=_FOLDER_HINT,
        ) from err
    written: list[Path] = []
    for name, value in values.items():
        if not _FILE_NAME.fullmatch(name):
            raise ValueError(f"connection file name {name!r} is not a plain lower-case name")
        if not isinstance(value, str):
            raise TypeError(f"connection value {name!r} must be text, got {type(value).__name__}")
        target = path / name
        try:
            write_private_file(target, (value.rstrip("\n") + "\n").encode())
        except OSError as err:
            raise OperationError(
                f"cannot write connection file {str(target)!r}: {err.strerror}"
            ) from err
        written.append(target)
    for name in known:
        if name not in values:
            stale = path / name
            try:
                stale.unlink(missing_ok=True)
            except OSError as err:
                raise OperationError(
                    f"cannot remove connection file {str(stale)!r} of an earlier host: "
                    f"{err.strerror}"
                ) from err
    log.info("wrote connection details to %s: %s", path, ", ".join(values))
    return written
