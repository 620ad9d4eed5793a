"""Prices from AWS through boto3: every page of DescribeSpotPriceHistory, in one AZ."""

from __future__ import annotations

import re

import boto3
import pytest

from mapt.core import MaptError, PrerequisiteError
from mapt.costs import AwsPrices, Cost, Placement, PriceUnknownError, price_interval
from tests.allocation.test_score_failures import error_answer
from tests.costs.scenario import EXPECTED, RUNS, TYPE, ZONE, history
from tests.harness.spot_market import installed

PLACEMENT = Placement("us-east-1", ZONE, (TYPE,), True, "Linux/UNIX")


def test_the_history_is_read_through_every_page_in_the_hosts_zone(aws_env: None) -> None:
    market = history(page_size=2)
    with installed(market.handlers()):
        prices = AwsPrices(boto3.Session())
        total = sum((price_interval(prices, PLACEMENT, *run) for run in RUNS), Cost())
    assert total.as_spot_api() == EXPECTED
    calls = market.calls_to("DescribeSpotPriceHistory")
    # Each interval's history is more than one page of two entries: the paginator went on.
    assert len(calls) > len(RUNS)
    assert {call.params["AvailabilityZone"] for call in calls} == {ZONE}
    assert {tuple(call.params["ProductDescriptions"]) for call in calls} == {("Linux/UNIX",)}
    assert {call.params["StartTime"] for call in calls} == {start for start, _ in RUNS}


def test_an_on_demand_price_the_pricing_api_lacks_is_an_error(aws_env: None) -> None:
    market = history()
    market.on_demand.clear()
    with installed(market.handlers()):
        prices = AwsPrices(boto3.Session())
        with pytest.raises(PriceUnknownError, match=re.escape(f"no on-demand price of {TYPE}")):
            price_interval(prices, PLACEMENT, *RUNS[0])


REFUSED = {
    # Credentials AWS no longer takes: the run cannot go on, whatever it prices (exit 5).
    "expired credentials": (400, "ExpiredTokenException", PrerequisiteError, "not valid"),
    # Valid credentials without the permission: the price alone is unknown (exit 1).
    "no permission": (400, "AccessDeniedException", PriceUnknownError, "pricing:GetProducts"),
}


@pytest.mark.parametrize(("status", "code", "kind", "said"), REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_on_demand_price_is_the_refusals_error(
    aws_env: None, status: int, code: str, kind: type[MaptError], said: str
) -> None:
    refusing = ("before-call.pricing.GetProducts", error_answer(status, code))
    with installed([*history().handlers(), refusing]):
        prices = AwsPrices(boto3.Session())
        with pytest.raises(MaptError) as raised:
            price_interval(prices, PLACEMENT, *RUNS[0])
    assert type(raised.value) is kind and code in str(raised.value) and said in str(raised.value)
    assert raised.value.exit_code == (5 if kind is PrerequisiteError else 1)
    if kind is PrerequisiteError:
        assert "pricing:GetProducts" not in str(raised.value)  # no permission would help
