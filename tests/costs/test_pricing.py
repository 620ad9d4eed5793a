"""Interval pricing: every price change counted for the time it was in force, exactly."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapt.core import InputError
from mapt.costs import (
    Cost,
    Placement,
    PriceChange,
    PriceUnknownError,
    interval_cost,
    parse_day,
    spot_cost,
    window,
)
from tests.costs.scenario import EXPECTED, RUNS, TYPE, ZONE, at, history

PLACEMENT = Placement("us-east-1", ZONE, (TYPE,), True, "Linux/UNIX")
ON_DEMAND = {TYPE: Decimal("0.096")}


def scenario_changes() -> list[PriceChange]:
    kept = [
        c for c in history().changes if c.availability_zone == ZONE and c.product == "Linux/UNIX"
    ]
    # Oldest data first: of two entries with one timestamp, the one AWS lists later.
    return [PriceChange(c.instance_type, c.at, Decimal(c.price)) for c in reversed(kept)]


def test_an_interrupted_day_costs_what_the_hand_computation_says() -> None:
    changes = scenario_changes()
    total = Cost()
    for start, end in RUNS:
        total += interval_cost(PLACEMENT, start, end, history=changes, on_demand=ON_DEMAND)
    assert total.actual_usd == Decimal("0.21375")
    assert total.potential_usd == Decimal("0.528")
    assert total.hours == Decimal("5.5")
    assert round(total.actual_usd, 2) == Decimal("0.21")
    assert total.as_spot_api() == EXPECTED


def test_at_equal_timestamps_the_newer_data_wins() -> None:
    older, newer = PriceChange(TYPE, at(11), Decimal("1")), PriceChange(TYPE, at(11), Decimal("2"))
    assert spot_cost([older, newer], [TYPE], at(11), at(12)) == Decimal(2) * 3_600_000_000
    assert spot_cost([newer, older], [TYPE], at(11), at(12)) == Decimal(1) * 3_600_000_000


def test_no_price_in_force_at_the_start_is_an_error_not_zero() -> None:
    later = [PriceChange(TYPE, at(11), Decimal("0.05"))]
    with pytest.raises(PriceUnknownError, match=re.escape(f"no spot price of {TYPE} in {ZONE}")):
        interval_cost(PLACEMENT, at(10), at(12), history=later, on_demand=ON_DEMAND)
    with pytest.raises(PriceUnknownError, match=re.escape(f"no on-demand price of {TYPE}")):
        interval_cost(PLACEMENT, at(11), at(12), history=later, on_demand={})


def test_several_types_are_priced_at_the_highest_at_each_moment() -> None:
    placement = Placement("us-east-1", ZONE, ("a", "b"), True, "Linux/UNIX")
    changes = [
        PriceChange("a", at(9), Decimal("0.10")),
        PriceChange("b", at(9), Decimal("0.20")),
        PriceChange("b", at(11), Decimal("0.05")),
    ]
    on_demand = {"a": Decimal("0.30"), "b": Decimal("0.40")}
    cost = interval_cost(placement, at(10), at(12), history=changes, on_demand=on_demand)
    assert cost.actual_usd == Decimal("0.30")  # 1 h at b's 0.20, then 1 h at a's 0.10
    assert cost.potential_usd == Decimal("0.80")


def test_on_demand_capacity_pays_the_on_demand_price() -> None:
    placement = Placement("us-east-1", ZONE, (TYPE,), False, "Linux/UNIX")
    cost = interval_cost(placement, at(10), at(13), history=[], on_demand=ON_DEMAND)
    assert cost.actual_usd == cost.potential_usd == Decimal("0.288")
    assert cost.savings_percent == 0


# -- properties ------------------------------------------------------------------------

_BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)
_minutes = st.integers(min_value=0, max_value=3 * 24 * 60)
_prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("9.9999"), places=4)
_histories = st.lists(st.tuples(_minutes, _prices), min_size=0, max_size=12)


def _history(points: list[tuple[int, Decimal]]) -> list[PriceChange]:
    first = [PriceChange(TYPE, _BASE - timedelta(hours=1), Decimal("0.05"))]
    return first + [PriceChange(TYPE, _BASE + timedelta(minutes=m), p) for m, p in points]


@given(_histories, _minutes, _minutes, _minutes)
def test_splitting_an_interval_never_changes_its_total(
    points: list[tuple[int, Decimal]], a: int, b: int, c: int
) -> None:
    start, middle, end = (_BASE + timedelta(minutes=m, seconds=7) for m in sorted((a, b, c)))
    changes = _history(points)
    whole = spot_cost(changes, [TYPE], start, end)
    assert whole == spot_cost(changes, [TYPE], start, middle) + spot_cost(
        changes, [TYPE], middle, end
    )


@given(_histories, _minutes, _minutes)
def test_the_total_lies_between_the_lowest_and_highest_price_in_force(
    points: list[tuple[int, Decimal]], a: int, b: int
) -> None:
    start, end = (_BASE + timedelta(minutes=m) for m in sorted((a, b)))
    changes = _history(points)
    span = (end - start) // timedelta(microseconds=1)
    prices = [c.price for c in changes]
    total = spot_cost(changes, [TYPE], start, end)
    assert min(prices) * span <= total <= max(prices) * span


@given(_prices, _minutes, _minutes)
def test_a_price_that_never_changes_costs_price_times_hours(price: Decimal, a: int, b: int) -> None:
    start, end = (_BASE + timedelta(minutes=m) for m in sorted((a, b)))
    cost = interval_cost(
        PLACEMENT,
        start,
        end,
        history=[PriceChange(TYPE, _BASE, price)],
        on_demand={TYPE: Decimal("10")},
    )
    assert cost.actual_usd == price * Decimal(abs(b - a)) / 60


# -- days ------------------------------------------------------------------------------


def test_days_are_parsed_strictly_and_name_their_parameter() -> None:
    assert parse_day("2026-11-20", "start") == date(2026, 11, 20)
    for bad in ("2026-13-01", "20261120", "2026-11-20T00:00", "yesterday"):
        with pytest.raises(InputError, match=f"^start must be a day as YYYY-MM-DD, got '{bad}'"):
            parse_day(bad, "start")


def test_a_window_counts_both_days_and_stops_now() -> None:
    now = at(15, day=21)
    assert window(date(2026, 11, 20), date(2026, 11, 20), now) == (at(0), at(0, day=21))
    assert window(date(2026, 11, 20), None, now) == (at(0), now)
    assert window(None, date(2026, 11, 25), now) == (None, now)
    with pytest.raises(InputError, match="end 2026-11-19 is before start 2026-11-20"):
        window(date(2026, 11, 20), date(2026, 11, 19), now)
