"""How user values appear in messages: cut to a readable length, and where they came from.

A value pasted by mistake (a key, a whole file) must not turn a one-line error into a
page, so every message that echoes a user value shows at most ``VALUE_LIMIT``
characters of it, then ``…``. mapt's messages quote user values (``repr``), so
``clip_values`` can apply that rule to a finished message: the CLI's error handler
enforces it once for every message of every layer. Unquoted words (paths, URLs, commands
in hints) are left whole: a user needs them whole to act on them.

A value read from the environment is masked (``redact``: registered secrets, a URL's
password) before it is cut, so a cut never leaves part of a secret that the mask would
have matched whole.
"""

from __future__ import annotations

import re

from mapt.core._logging import redact

# How many characters of a value an error message shows.
VALUE_LIMIT = 80
ELLIPSIS = "…"
# A quoted value, '...' or "...", as repr() writes them; not an apostrophe (mapt's).
_QUOTED = re.compile(r"(?<!\w)'(?:[^'\\]|\\.)*'|(?<!\w)\"(?:[^\"\\]|\\.)*\"")


def clip(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, ending in ``…`` when it was longer."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def shown(value: object, limit: int = VALUE_LIMIT) -> str:
    """``repr(value)`` for a message, its content cut to ``limit`` characters."""
    text = repr(value)
    if isinstance(value, str) and len(value) > limit:
        return text[0] + clip(value, limit) + text[0]
    return clip(text, limit + 2)


def clip_values(message: str, limit: int = VALUE_LIMIT) -> str:
    """``message`` on one line, each quoted value longer than ``limit`` cut."""

    def cut(match: re.Match[str]) -> str:
        token = match.group(0)
        return token[0] + clip(token[1:-1], limit) + token[0]

    one_line = " ".join(message.split())
    return _QUOTED.sub(cut, one_line)


def from_environment(variable: str, value: str) -> str:
    """How a message names a value read from the environment: ``VAR=value (from the
    environment)``, the value masked (``redact``), then cut like any other."""
    return f"{variable}={clip(redact(value))} (from the environment)"


def comma_list(name: str, value: str | None) -> tuple[str, ...]:
    """Split ``a,b,c``; None (not given) is empty, an explicitly empty list is an error.

    ``name`` is how the message names the value (a flag, ``--compute-sizes``).
    """
    from mapt.core._errors import InputError

    if value is None:
        return ()
    items = tuple(item.strip() for item in value.split(","))
    if not value.strip() or any(not item for item in items):
        raise InputError(f"{name} {shown(value)} has an empty item: give a comma-separated list")
    return items
