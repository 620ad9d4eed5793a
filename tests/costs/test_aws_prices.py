"""Prices from AWS through boto3: every page of DescribeSpotPriceHistory, in one AZ."""

from __future__ import annotations

import re

import boto3
import pytest

from mapt.costs import AwsPrices, Cost, Placement, PriceUnknownError, price_interval
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
