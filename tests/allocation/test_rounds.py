"""A fresh spot ranking takes at most two sequential rounds of AWS calls.

Every EC2 and Pricing call is held for ``ROUND_LATENCY`` and counted by dependency
(``CallTimeline.following_dependencies``): a call's round is one more than the deepest
answer it could have used, followed through the thread pools, so a call that a loaded
machine starts late is not counted a round later. Round 1 asks for the types and the
regions (and a shape's placement scores, by its requirements); round 2 for everything
else at once, for a shape only in the regions its scores rank. (``benchmarks/allocation_speed.py``
counts by wall-clock order, which also shows CPU on the critical path.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from mapt.allocation import (
    AllocationArgs,
    ComputeRequest,
    NoEligibleOfferError,
    SpotArgs,
    allocation,
    spot_offer_rows,
    spot_offers,
)
from mapt.allocation._selection import score_requirements
from mapt.core import InputError, RunContext
from mapt.stacks import InMemoryEngine
from tests.harness.rounds import ROUND_LATENCY, CallTimeline
from tests.harness.spot_market import ApiCallLog, SpotMarket, installed

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


def asked_in(calls: ApiCallLog, operation: str) -> list[str]:
    """The regions ``operation`` was called in, in order."""
    return [call.region for call in calls.calls if call.operation == operation]


@pytest.mark.parametrize("scores", ["scores", "no scores"])
@pytest.mark.parametrize("name", REQUESTS)
def test_a_fresh_ranking_takes_two_rounds(
    market: SpotMarket, all_regions: list[str], aws: ApiCallLog, name: str, scores: str
) -> None:
    if scores == "no scores":
        market.score_errors = {"*": "UnauthorizedOperation"}
    args = spot_args(REQUESTS[name], all_regions)
    timeline = timed(lambda: spot_offers(args))
    assert timeline.dependency_rounds() <= 2
    if scores == "no scores" or name == "named types":  # every region asked
        assert sorted(asked_in(aws, "DescribeSpotPriceHistory")) == sorted(KEPT)


# Scores in two of the five regions only; both pass tolerance "low" (5).
TWO_SCORED = {"euw1-az1": 9, "usw2-az2": 6}


@pytest.mark.parametrize("name", ["shape, 35 matching types", "nested virt"])
def test_a_shape_is_scored_in_round_one_and_round_two_asks_only_the_scored_regions(
    market: SpotMarket, all_regions: list[str], aws: ApiCallLog, name: str
) -> None:
    market.default_score, market.scores = None, dict(TWO_SCORED)
    args = spot_args(REQUESTS[name], all_regions)
    offers: list[Any] = []
    timeline = timed(lambda: offers.extend(spot_offers(args)))
    assert {offer.region for offer in offers} == {"eu-west-1", "us-west-2"}
    assert timeline.dependency_rounds() <= 2
    # The five regions are scored in one call, by the shape's requirements, in round 1.
    (scored,) = market.calls_to("GetSpotPlacementScores")
    assert "InstanceRequirementsWithMetadata" in scored.params
    assert "InstanceTypes" not in scored.params
    assert sorted(scored.params["RegionNames"]) == sorted(KEPT)
    assert [c.depth for c in timeline.calls if c.operation == "GetSpotPlacementScores"] == [1]
    # Round 2 asks only the two regions the scores rank: 2 calls each, not 2 x 5.
    for operation in ("DescribeAvailabilityZones", "DescribeSpotPriceHistory"):
        assert sorted(asked_in(aws, operation)) == ["eu-west-1", "us-west-2"]
    assert timeline.count("ec2") == 3 + 2 * 2  # types, regions, scores; then 2 regions


# A region every account may leave disabled, and one this account has not enabled.
OPT_IN, DISABLED = "af-south-1", "me-south-1"
# Three matching types: af-south-1's zones price all three, so they get offers.
FEW_TYPES = ComputeRequest(cpus=2, memory_gib=8, compute_families=("m5", "m6i", "t3"))


@pytest.mark.parametrize("refused", [DISABLED, OPT_IN])
def test_a_failed_opt_in_batch_still_prices_its_usable_regions(
    market: SpotMarket,
    all_regions: list[str],
    aws: ApiCallLog,
    caplog: pytest.LogCaptureFixture,
    refused: str,
) -> None:
    # Round 1 scores the opt-in regions by themselves: [af-south-1, me-south-1]. A call
    # naming `refused` is refused. Naming the disabled region fails the batch, so
    # af-south-1 is scored again with its types in round 2; if af-south-1 itself is
    # refused, its zones are ranked on price alone, the other regions keep their scores.
    market.refused_regions = frozenset({refused})
    kept = ("eu-north-1", OPT_IN, DISABLED)
    args = AllocationArgs(
        compute_request=FEW_TYPES,
        spot=SpotArgs(
            tolerance="low", excluded_regions=tuple(r for r in all_regions if r not in kept)
        ),
    )
    offers: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="mapt"):
        timeline = timed(lambda: offers.extend(spot_offers(args)))
    assert timeline.dependency_rounds() <= 2
    calls = market.calls_to("GetSpotPlacementScores")
    by_requirements, by_types = (
        [c.params["RegionNames"] for c in calls if key in c.params]
        for key in ("InstanceRequirementsWithMetadata", "InstanceTypes")
    )
    assert sorted(map(sorted, by_requirements)) == [sorted([OPT_IN, DISABLED]), ["eu-north-1"]]
    assert by_types == [[OPT_IN]]
    assert sorted(asked_in(aws, "DescribeSpotPriceHistory")) == sorted(["eu-north-1", OPT_IN])
    scores: dict[str, set[int | None]] = {}
    for offer in offers:
        scores.setdefault(offer.region, set()).add(offer.score)
    assert scores["eu-north-1"] == {8}
    assert scores[OPT_IN] == ({8} if refused == DISABLED else {None})
    assert f"scoring {OPT_IN} with their types instead" in caplog.text
    # A usable region lost its score by requirements: that is worth a warning. Its
    # rescoring failing too says what happens: the other regions keep their scores.
    rescoring = f"ranking {OPT_IN} on price alone; the other regions keep their scores"
    assert (rescoring in caplog.text) == (refused == OPT_IN)
    assert not any(r.getMessage().endswith("); ranking on price alone") for r in caplog.records)


def test_a_batch_naming_only_disabled_regions_warns_nobody(
    market: SpotMarket, all_regions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # The account has not enabled me-south-1: its opt-in batch is refused on every
    # allocation, and no usable region loses a score, so nothing is worth a warning.
    market.refused_regions = frozenset({DISABLED})
    kept = ("eu-north-1", DISABLED)
    args = AllocationArgs(
        compute_request=FEW_TYPES,
        spot=SpotArgs(
            tolerance="low", excluded_regions=tuple(r for r in all_regions if r not in kept)
        ),
    )
    with caplog.at_level(logging.DEBUG, logger="mapt"):
        offers = spot_offers(args)
    assert offers and all(offer.score == 8 for offer in offers)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any(DISABLED in r.getMessage() for r in caplog.records)  # at debug level


def test_refused_requirements_are_scored_by_their_types_in_round_two(
    market: SpotMarket,
    all_regions: list[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # AWS refuses a requirement mapt got wrong (here one the EC2 model documents as
    # unsupported): every requirement batch fails, the regions every account has
    # included. The scores are then asked by type list alongside the prices.
    from mapt.allocation import _allocation

    def refused_requirements(request: ComputeRequest) -> dict[str, Any] | None:
        requirements = score_requirements(request)
        assert requirements is not None
        wrong = {**requirements["InstanceRequirements"], "RequireHibernateSupport": False}
        return {**requirements, "InstanceRequirements": wrong}

    monkeypatch.setattr(_allocation, "score_requirements", refused_requirements)
    market.default_score, market.scores = None, dict(TWO_SCORED)
    args = spot_args(REQUESTS["shape, 35 matching types"], all_regions)
    offers: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="mapt"):
        timeline = timed(lambda: offers.extend(spot_offers(args)))
    assert timeline.dependency_rounds() <= 2
    assert {offer.region for offer in offers} == {"eu-west-1", "us-west-2"}
    assert all(offer.score is not None for offer in offers)
    calls = [c for c in timeline.calls if c.operation == "GetSpotPlacementScores"]
    assert [c.depth for c in calls] == [1, 2]
    (by_types,) = [
        c for c in market.calls_to("GetSpotPlacementScores") if "InstanceTypes" in c.params
    ]
    assert sorted(by_types.params["RegionNames"]) == sorted(KEPT)
    assert "RequireHibernateSupport is not supported for GetSpotPlacementScores" in caplog.text
    assert "with their types instead" in caplog.text
    assert "on price alone" not in caplog.text


IMAGE = "mapt-test-only-in-the-north-*"


@pytest.mark.parametrize("where", ["eu-north-1", None])
def test_an_image_only_where_no_zone_scores_is_no_capacity_not_a_bad_name(
    market: SpotMarket, all_regions: list[str], where: str | None
) -> None:
    # The scores rank eu-west-1 and us-west-2; the image exists in eu-north-1 only (or
    # nowhere). Only there is the name right and the market wrong (exit 4, not 2).
    import boto3

    if where is not None:
        ec2 = boto3.client("ec2", region_name=where)
        ec2.register_image(Name=IMAGE.replace("*", "9"), RootDeviceName="/dev/sda1")
    market.default_score, market.scores = None, dict(TWO_SCORED)
    args = replace(spot_args(REQUESTS["shape, 35 matching types"], all_regions), ami_name=IMAGE)
    if where is None:
        with pytest.raises(InputError, match="is not found in any candidate region") as raised:
            spot_offers(args)
        assert raised.value.exit_code == 2
    else:
        with pytest.raises(NoEligibleOfferError) as found:
            spot_offers(args)
        assert found.value.message.endswith(f"no availability zone has a placement score: {where}")
        assert found.value.exit_code == 4


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
