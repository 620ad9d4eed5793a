"""Pricing what a host ran: intervals priced with the spot price history, pure functions.

A spot price is in force from its timestamp until the next change (DescribeSpotPriceHistory's
semantics); the price in force at an interval's start is the newest at or before it. Sums
are exact: each stretch adds ``price x microseconds`` (Decimals of the prices AWS wrote,
times integers), and dollars are divided out once, at the end, so splitting an interval
never changes its total. Where a placement allows several instance types, each moment is
priced at the highest of their prices, the basis of a spot bid that covers every type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from mapt.core import InputError, OperationError

_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)
# What the answers show: spot-api's precision (4 places; dollars to a hundredth of a cent).
_PLACES = Decimal("0.0001")


class PriceUnknownError(OperationError):
    """No price is known for a moment a host ran: the cost is unknown, never zero."""


@dataclass(frozen=True)
class PriceChange:
    """One DescribeSpotPriceHistory entry: ``price`` USD/hour in force from ``timestamp``."""

    instance_type: str
    timestamp: datetime
    price: Decimal


@dataclass(frozen=True)
class Placement:
    """Where and on what a host ran: the AZ, the types it could run, spot or on demand."""

    region: str
    availability_zone: str
    instance_types: tuple[str, ...]
    spot: bool
    product: str


@dataclass(frozen=True)
class Cost:
    """Exact amounts: USD x microseconds paid (``actual``) and at on-demand prices, and time.

    Adding two costs adds their parts exactly; ``usd``/``hours`` round only for showing.
    """

    actual: Decimal = Decimal(0)
    potential: Decimal = Decimal(0)
    microseconds: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.actual + other.actual,
            self.potential + other.potential,
            self.microseconds + other.microseconds,
        )

    @property
    def actual_usd(self) -> Decimal:
        return self.actual / _MICROSECONDS_PER_HOUR

    @property
    def potential_usd(self) -> Decimal:
        return self.potential / _MICROSECONDS_PER_HOUR

    @property
    def hours(self) -> Decimal:
        return Decimal(self.microseconds) / _MICROSECONDS_PER_HOUR

    @property
    def savings_percent(self) -> Decimal:
        """What spot saved against on demand, in percent (0 when nothing would be paid)."""
        if self.potential == 0:
            return Decimal(0)
        return (1 - self.actual / self.potential) * 100

    def as_spot_api(self) -> dict[str, object]:
        """The spot-api's document: ``costs`` (actual, potential), ``running``, ``savings``."""
        return {
            "costs": {"actual": shown(self.actual_usd), "potential": shown(self.potential_usd)},
            "running": {"unit": "hours", "value": shown(self.hours)},
            "savings": {"unit": "percentage", "value": shown(self.savings_percent)},
        }


def shown(value: Decimal) -> float:
    """``value`` rounded half up to 4 places, as a JSON number."""
    return float(value.quantize(_PLACES, rounding=ROUND_HALF_UP))


def microseconds(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def clipped(
    start: datetime, end: datetime | None, window_start: datetime | None, window_end: datetime
) -> tuple[datetime, datetime] | None:
    """The part of [start, end) within [window_start, window_end); None when empty.

    An interval still open (``end`` None) runs until ``window_end``.
    """
    low = start if window_start is None else max(start, window_start)
    high = window_end if end is None else min(end, window_end)
    return (low, high) if low < high else None


def spot_cost(
    history: Iterable[PriceChange],
    instance_types: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    where: str = "",
) -> Decimal:
    """USD x microseconds of [start, end) on spot, from one AZ's price ``history``.

    ``history`` is in the order the data was seen, oldest data first: at equal
    timestamps the later entry wins. Raises ``PriceUnknownError`` when a type has no
    price in force at ``start``.
    """
    if not start < end:
        return Decimal(0)
    # type -> [(timestamp, price)] sorted; a later entry at an equal timestamp replaces.
    changes: dict[str, dict[datetime, Decimal]] = {t: {} for t in instance_types}
    for change in history:
        if change.instance_type in changes:
            changes[change.instance_type][change.timestamp] = change.price
    in_force: dict[str, Decimal] = {}
    moments: set[datetime] = set()
    for instance_type, by_time in changes.items():
        before = [stamp for stamp in by_time if stamp <= start]
        if not before:
            raise PriceUnknownError(
                f"no spot price of {instance_type}{where} is known at {start.isoformat()}",
                hint="DescribeSpotPriceHistory keeps 90 days; older intervals cannot be priced.",
            )
        in_force[instance_type] = by_time[max(before)]
        moments.update(stamp for stamp in by_time if start < stamp < end)
    total = Decimal(0)
    at = start
    for moment in sorted(moments):
        total += max(in_force.values()) * microseconds(moment - at)
        for instance_type, by_time in changes.items():
            if moment in by_time:
                in_force[instance_type] = by_time[moment]
        at = moment
    return total + max(in_force.values()) * microseconds(end - at)


def interval_cost(
    placement: Placement,
    start: datetime,
    end: datetime,
    *,
    history: Iterable[PriceChange],
    on_demand: Mapping[str, Decimal],
) -> Cost:
    """The cost of [start, end) at ``placement``: spot from ``history``, potential on demand.

    ``on_demand`` maps each type to its on-demand USD/hour; the potential is the
    highest of the placement's types for the whole time. An on-demand placement
    pays that price: its actual equals its potential.
    """
    missing = [t for t in placement.instance_types if t not in on_demand]
    if missing:
        raise PriceUnknownError(
            f"no on-demand price of {missing[0]} in {placement.region} is known",
            hint="The Pricing API prices it; check that it answers (pricing:GetProducts).",
        )
    span = microseconds(end - start)
    potential = max(on_demand[t] for t in placement.instance_types) * span
    if not placement.spot:
        return Cost(potential, potential, span)
    actual = spot_cost(
        history, placement.instance_types, start, end, where=f" in {placement.availability_zone}"
    )
    return Cost(actual, potential, span)


def parse_day(text: str, name: str) -> date:
    """A ``YYYY-MM-DD`` day from ``text``; ``InputError`` naming ``name`` otherwise."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name} must be a day as YYYY-MM-DD, got {text!r}") from None


def window(start: date | None, end: date | None, now: datetime) -> tuple[datetime | None, datetime]:
    """[start's midnight UTC, the midnight after ``end``) capped at ``now``: both days count.

    No ``start``: since the first interval; no ``end``: until ``now``.
    """
    low = None if start is None else datetime.combine(start, time(), timezone.utc)
    high = now if end is None else datetime.combine(end + timedelta(days=1), time(), timezone.utc)
    if start is not None and end is not None and end < start:
        raise InputError(f"end {end.isoformat()} is before start {start.isoformat()}")
    return low, min(high, now)
