"""``$GITHUB_OUTPUT``: what later workflow steps read, appended as ``name=value`` lines.

``host create`` and ``pool lease`` write it once their work is done. The variable is
checked before that work starts (``check_github_output``), so a value that points at
a folder, or at a file that cannot be written or created, is bad input (exit 2) that
cost nothing; a write that still fails afterwards (a full disk, a value with a line
break) is exit 1 and says how to undo what was made, which is kept (a host, a lease).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mapt.core import InputError, OperationError, filesystem_error, from_environment

VARIABLE = "GITHUB_OUTPUT"
_HINT = f"Point {VARIABLE} at a file you can write to, or unset it."


def check_github_output() -> None:
    """Refuse a ``$GITHUB_OUTPUT`` that could not be appended to, before any work.

    It must be a file that can be opened for appending (opening writes nothing), or
    not exist yet in a folder where a file can be created: that is proved by creating
    and removing a temporary file there, because permission bits lie (root, read-only
    mounts). Unset or empty, nothing is written and nothing is checked.
    """
    value = os.environ.get(VARIABLE)
    if not value:
        return
    path = Path(value)
    named = from_environment(VARIABLE, value)
    if path.is_dir():
        raise InputError(f"{named} is a folder, not a file", hint=_HINT)
    try:
        if path.exists():
            with open(path, "a", encoding="utf-8"):
                pass
        else:
            tempfile.NamedTemporaryFile(dir=path.parent, prefix=".mapt-check-").close()
    except OSError as error:
        raise InputError(
            f"{named} cannot be written: {error.strerror or error}", hint=_HINT
        ) from error


def write_github_output(values: Mapping[str, str | None], *, undo: str) -> None:
    """Append ``values`` (None as empty) to ``$GITHUB_OUTPUT`` when it is set.

    Every value is checked before anything is written, so a value with a line break
    (which would start a line of its own) writes nothing. This runs after the work it
    reports, so its failures are ``OperationError``\\ s whose hint is ``undo``: how to
    remove what was made and kept.
    """
    path = os.environ.get(VARIABLE)
    if not path:
        return
    lines = []
    for name, value in values.items():
        text = "" if value is None else value
        if "\n" in text or "\r" in text:
            raise OperationError(
                f"output {name!r} holds a line break; {VARIABLE} cannot take it", hint=undo
            )
        lines.append(f"{name}={text}\n")
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(lines)
    except OSError as error:
        failed = filesystem_error(error)
        failed.hint = f"{failed.hint} {undo}"
        raise failed from error
