"""Durations on the command line, written as Go writes them: ``2h``, ``30m``, ``1h30m``.

The Go mapt took ``time.ParseDuration`` strings, so CI jobs already pass values like
``--timeout 1h30m``; mapt reads the same grammar: an optional sign, then one or more
``<number><unit>`` parts with units ``h``, ``m``, ``s``, ``ms``, ``us`` (or ``µs``)
and ``ns``, and decimal numbers (``1.5h``). Unlike Go, a bare ``0`` and every value
that is not longer than zero are refused: each flag that takes a duration is a
timeout or an age, for which zero or a negative value is a mistake. The result is a
``timedelta``, which holds microseconds: any nanoseconds below that are dropped.

``format_duration`` writes a ``timedelta`` back the way Go's ``Duration.String`` does
(``1h30m0s``, ``1.5s``, ``500ms``), so messages show a value in the form it is typed.
"""

from __future__ import annotations

import re
from datetime import timedelta

from mapt.core._errors import InputError

_NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, as Go's String() writes it
    "\u03bcs": 1_000,  # Greek mu, which Go accepts too
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
# Go keeps a duration in a signed 64-bit count of nanoseconds (about 2,562,047 hours).
_MAX_NANOSECONDS = 2**63 - 1
# One part: digits with an optional fraction (at least one digit on either side of the
# dot), then the unit's letters. Go's grammar, one part at a time; ASCII digits, as
# Go's (``\d`` and ``Fraction`` take any script's: "٢h" was two hours).
_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([^0-9.]*)")
_EXAMPLES = "like 30m, 2h or 1h30m (units h, m, s, ms, us, ns)"


def parse_duration(
    text: str, *, flag: str = "--timeout", maximum: timedelta | None = None
) -> timedelta:
    """The duration ``text`` means, or an ``InputError`` naming ``flag`` and the text.

    ``maximum`` caps the value for flags where a longer one is surely a typo.
    """
    from fractions import Fraction  # here, not at the top: `mapt --help` parses no duration

    value = text.strip()
    sign, body = (value[0], value[1:]) if value[:1] in ("+", "-") else ("", value)
    if not body:
        raise InputError(f"{flag} {text!r} is not a duration: write one {_EXAMPLES}")
    if body == "0":  # Go's one duration without a unit
        raise InputError(f"{flag} {text!r} must be longer than zero")
    total = Fraction(0)
    position = 0
    while position < len(body):
        part = _PART.match(body, position)
        if part is None:
            raise InputError(f"{flag} {text!r} is not a duration: write one {_EXAMPLES}")
        number, unit = part.groups()
        if unit not in _NANOSECONDS:
            what = f"an unknown unit {unit!r}" if unit else f"no unit after {number!r}"
            raise InputError(f"{flag} {text!r} has {what}: write a duration {_EXAMPLES}")
        total += Fraction(number) * _NANOSECONDS[unit]
        position = part.end()
    if total > _MAX_NANOSECONDS:
        raise InputError(f"{flag} {text!r} is too long to be a duration")
    if sign == "-" or not total:
        raise InputError(f"{flag} {text!r} must be longer than zero")
    duration = timedelta(microseconds=int(total // 1_000))
    if not duration:
        raise InputError(f"{flag} {text!r} is shorter than a microsecond, the shortest duration")
    if maximum is not None and duration > maximum:
        raise InputError(f"{flag} {text!r} is longer than the limit of {format_duration(maximum)}")
    return duration


def format_duration(duration: timedelta) -> str:
    """``duration`` as Go's ``Duration.String`` writes it, e.g. ``1h30m0s`` or ``250ms``."""
    micros = (duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds
    if micros < 0:
        return "-" + format_duration(-duration)
    if micros == 0:
        return "0s"
    if micros < 1_000:
        return f"{micros}\u00b5s"
    if micros < 1_000_000:
        return _decimal(micros, 1_000) + "ms"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = _decimal(rest, 1_000_000) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{minutes}m{seconds}"
    return seconds


def _decimal(count: int, per_unit: int) -> str:
    """``count / per_unit`` in decimal, with no trailing zeros after the point."""
    whole, fraction = divmod(count, per_unit)
    if not fraction:
        return str(whole)
    digits = len(str(per_unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")
