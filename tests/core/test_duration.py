"""Durations: Go's grammar in, Go's spelling out, and a one-line error for anything else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapt.core import InputError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("1h0m0s", timedelta(hours=1)),
        (".5h", timedelta(minutes=30)),
        ("5.s", timedelta(seconds=5)),
        ("+45m", timedelta(minutes=45)),
        ("1500ms", timedelta(seconds=1.5)),
        ("250us", timedelta(microseconds=250)),
        ("3\u00b5s", timedelta(microseconds=3)),
        ("2000ns", timedelta(microseconds=2)),
        ("1h1h", timedelta(hours=2)),  # Go adds repeated units up
        (" 10m ", timedelta(minutes=10)),  # from an environment variable with a newline
        ("168h", timedelta(days=7)),
    ],
)
def test_go_durations_are_read_as_go_reads_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is not a duration"),
        ("2", "has no unit after '2'"),
        ("-1h", "must be longer than zero"),
        ("2d", "has an unknown unit 'd'"),
        ("1x", "has an unknown unit 'x'"),
        ("h", "is not a duration"),
        ("0s", "must be longer than zero"),
        ("0", "must be longer than zero"),
        ("-", "is not a duration"),
        (".s", "is not a duration"),
        ("1h 30m", "has an unknown unit 'h '"),
        ("500ns", "shorter than a microsecond"),
        ("2562048h", "too long"),  # beyond Go's 64-bit nanoseconds
        ("٤h", "is not a duration"),  # ASCII digits only, as Go's
        ("1٤h", "has an unknown unit '٤h'"),
    ],
)
def test_bad_durations_name_the_flag_and_the_value(text: str, reason: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_duration(text, flag="--older-than")
    message = str(raised.value)
    assert message.startswith(f"--older-than {text!r} ")
    assert reason in message
    assert "\n" not in message
    assert raised.value.exit_code == 2


def test_the_flag_defaults_to_timeout_and_a_maximum_can_be_set() -> None:
    with pytest.raises(InputError, match=r"^--timeout '1x' "):
        parse_duration("1x")
    week = timedelta(days=7)
    assert parse_duration("168h", maximum=week) == week
    with pytest.raises(InputError, match=r"'169h' is longer than the limit of 168h0m0s"):
        parse_duration("169h", maximum=week)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h30m0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=1), "1\u00b5s"),
        (timedelta(days=2, seconds=1), "48h0m1s"),
        (timedelta(0), "0s"),
        (-timedelta(minutes=5), "-5m0s"),
    ],
)
def test_durations_are_written_as_go_writes_them(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@given(
    st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=106_751, hours=23))
)
def test_formatting_then_parsing_gives_the_same_duration(duration: timedelta) -> None:
    assert parse_duration(format_duration(duration)) == duration
