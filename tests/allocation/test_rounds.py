"""A fresh spot ranking takes at most two sequential rounds of AWS calls.

Every EC2 and Pricing call is held for ``ROUND_LATENCY`` and counted by dependency
(``CallTimeline.following_dependencies``): a call's round is one more than the deepest
answer it could have used, followed through the thread pools, so a call that a loaded
machine starts late is not counted a round later. Round 1 asks for the types and the
regions; round 2 for everything else at once. (``benchmarks/allocation_speed.py``
counts by wall-clock order, which also shows CPU on the critical path.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mapt.allocation import (
    AllocationArgs,
    ComputeRequest,
    SpotArgs,
    allocation,
    spot_offer_rows,
    spot_offers,
)
from mapt.core import RunContext
from mapt.stacks import InMemoryEngine
from tests.harness.rounds import ROUND_LATENCY, CallTimeline
from tests.harness.spot_market import SpotMarket, installed

# Five regions keep the test quick; the benchmark measures every region.
KEPT = ("ap-south-1", "eu-north-1", "eu-west-1", "us-east-1", "us-west-2")
REQUESTS = {
    "shape, 35 matching types": ComputeRequest(cpus=96, memory_gib=768),
    "nested virt": ComputeRequest(nested_virt=True),
    "named types": ComputeRequest(compute_sizes=("m5.large", "m6i.large", "t3.large")),
}


@pytest.fixture
def market(spot_market: SpotMarket) -> SpotMarket:
    spot_market.default_score = 8
    return spot_market


def spot_args(request: ComputeRequest, all_regions: list[str]) -> AllocationArgs:
    excluded = tuple(r for r in all_regions if r not in KEPT)
    return AllocationArgs(
        compute_request=request, spot=SpotArgs(tolerance="low", excluded_regions=excluded)
    )


@pytest.fixture
def all_regions(aws: Any) -> list[str]:
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    return [region.name for region in RegionsAndZonesBackend.regions]


def timed(run: Callable[[], object]) -> CallTimeline:
    timeline = CallTimeline(latency=ROUND_LATENCY, services=("ec2", "pricing"))
    with installed(timeline.handlers()), timeline.following_dependencies():
        run()
    return timeline


@pytest.mark.parametrize("scores", ["scores", "no scores"])
@pytest.mark.parametrize("name", REQUESTS)
def test_a_fresh_ranking_takes_two_rounds(
    market: SpotMarket, all_regions: list[str], name: str, scores: str
) -> None:
    if scores == "no scores":
        market.score_errors = {"*": "UnauthorizedOperation"}
    args = spot_args(REQUESTS[name], all_regions)
    timeline = timed(lambda: spot_offers(args))
    assert timeline.count("ec2") >= 2 * len(KEPT) + 3
    assert timeline.dependency_rounds() <= 2


@pytest.mark.parametrize("name", ["shape, 35 matching types", "named types"])
def test_spot_price_rows_take_two_rounds_with_on_demand_prices(
    market: SpotMarket, all_regions: list[str], name: str
) -> None:
    args = spot_args(REQUESTS[name], all_regions)
    rows: list[dict[str, Any]] = []
    timeline = timed(lambda: rows.extend(spot_offer_rows(args)))
    assert rows and all("on_demand_price" in row for row in rows)
    assert timeline.count("pricing") >= 1
    assert timeline.dependency_rounds() <= 2


def test_allocation_takes_two_rounds_and_a_rerun_none(
    market: SpotMarket, all_regions: list[str]
) -> None:
    args = spot_args(REQUESTS["nested virt"], all_regions)
    engine = InMemoryEngine()
    context = RunContext(project_name="rounds")
    fresh = timed(lambda: allocation(context, args, engine=engine))
    assert fresh.dependency_rounds() <= 2
    rerun = timed(lambda: allocation(context, args, engine=engine))
    assert rerun.count() == 0


@pytest.mark.parametrize("scores", ["scores", "no scores"])
@pytest.mark.parametrize("ranking", ["spot_offers", "spot_offer_rows"])
def test_named_types_in_always_enabled_regions_take_one_round(
    market: SpotMarket, all_regions: list[str], ranking: str, scores: str
) -> None:
    # Every kept region is enabled in every account: nothing waits for DescribeRegions.
    if scores == "no scores":
        market.score_errors = {"*": "UnauthorizedOperation"}
    args = spot_args(REQUESTS["named types"], all_regions)
    rank = spot_offers if ranking == "spot_offers" else spot_offer_rows
    answers: list[Any] = []
    timeline = timed(lambda: answers.extend(rank(args)))
    assert answers
    assert timeline.count("ec2") >= 2 * len(KEPT) + 3
    assert timeline.dependency_rounds() == 1
