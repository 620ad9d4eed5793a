"""Spot selection end to end on moto plus the replayed market (tests/data/spot-market.csv.gz)."""

from __future__ import annotations

import logging
from dataclasses import replace

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapt.allocation import (
    AllocationArgs,
    ComputeRequest,
    NoEligibleOfferError,
    NoMatchingInstanceTypesError,
    SpotArgs,
    on_demand_comparison,
    spot_allocation,
    spot_offers,
)
from mapt.allocation import _selection as selection
from mapt.allocation._ec2 import ALWAYS_ENABLED_REGIONS
from mapt.core import InputError
from tests.harness.spot_market import ApiCallLog, SpotMarket

# Families priced in the market that have a 2 vCPU / 8 GiB x86_64 size.
FAMILIES = ("m5", "m6a", "m6i", "m7a", "m7i", "t3", "t3a")
SCORES = {
    "use1-az4": 9,
    "use1-az6": 8,
    "eun1-az1": 9,
    "eun1-az2": 6,
    "euw1-az1": 7,
    "apne1-az4": 8,
    "aps1-az1": 10,
    "usw2-az1": 7,
}


def args(tolerance: str = "lowest", excluded: tuple[str, ...] = (), **request) -> AllocationArgs:  # type: ignore[no-untyped-def]
    shape = {"cpus": 2, "memory_gib": 8, "compute_families": FAMILIES, **request}
    return AllocationArgs(
        compute_request=ComputeRequest(**shape),
        spot=SpotArgs(tolerance=tolerance, excluded_regions=excluded),
    )


def oracle(
    market: SpotMarket, types: list[str], min_score: int, excluded=()
) -> list[tuple[float, str]]:  # type: ignore[no-untyped-def]
    """(bid, AZ ID) of every eligible AZ straight from the CSV, cheapest first."""
    needed = min(len(types), 8)
    bids = []
    for az_id, score in market.scores.items():
        region = next(r.region for r in market.rows if r.az_id == az_id)
        if score < min_score or region in excluded:
            continue
        prices = sorted(
            float(r.spot_price)
            for r in market.rows
            if r.az_id == az_id and r.instance_type in types and r.spot_price
        )
        if len(prices) >= needed:
            bids.append((prices[needed - 1], az_id))
    return sorted(bids, key=lambda bid: (bid[0], -market.scores[bid[1]]))


@pytest.fixture
def market(spot_market: SpotMarket) -> SpotMarket:
    spot_market.scores = dict(SCORES)
    return spot_market


def types_of(market: SpotMarket) -> list[str]:
    return sorted({f"{family}.large" for family in FAMILIES})


def test_the_choice_is_the_cheapest_eligible_az_of_the_real_market(market: SpotMarket) -> None:
    result = spot_allocation(args())
    expected = oracle(market, types_of(market), 7)
    assert (result.spot_price, result.availability_zone_id) == expected[0]
    assert [(c.spot_price, c.availability_zone_id) for c in result.candidates] == expected[1:10]
    assert result.availability_zone == market.az_name(result.availability_zone_id)
    assert result.score == SCORES[result.availability_zone_id]
    assert result.max_price == pytest.approx(result.spot_price * 1.3, abs=5e-7)  # 6 decimals
    # The newest point of the hour is the CSV price: never the older (x1.25) point.
    for name in result.instance_types:
        row = market.row(name, result.availability_zone_id)
        assert row.spot_price is not None and float(row.spot_price) <= result.spot_price


def test_types_are_cheapest_first_and_all_priced_in_the_chosen_az(market: SpotMarket) -> None:
    result = spot_allocation(args())
    prices = [
        float(market.row(t, result.availability_zone_id).spot_price or "nan")
        for t in result.instance_types
    ]
    assert prices == sorted(prices)
    assert max(prices) == result.spot_price


def test_every_page_of_price_history_is_read(market: SpotMarket) -> None:
    whole = spot_offers(args())
    market.page_size = 5
    assert spot_offers(args()) == whole
    assert len(market.calls_to("DescribeSpotPriceHistory")) > 2 * len({o.region for o in whole})


@pytest.mark.parametrize("excluded", [("us-east-1",), ("us-east-1", "eu-north-1", "ap-south-1")])
def test_excluded_regions_never_appear(market: SpotMarket, excluded: tuple[str, ...]) -> None:
    offers = spot_offers(args(tolerance="medium", excluded=excluded))
    assert offers and not {o.region for o in offers} & set(excluded)
    expected = oracle(market, types_of(market), 3, excluded)
    assert [(o.spot_price, o.availability_zone_id) for o in offers] == expected[:10]
    for call in market.calls_to("GetSpotPlacementScores"):
        assert not set(call.params["RegionNames"]) & set(excluded)


def test_unknown_excluded_region_is_refused(market: SpotMarket) -> None:
    with pytest.raises(InputError, match="'xx-fake-9'"):
        spot_offers(args(excluded=("xx-fake-9",)))


def test_excluding_every_region_is_refused(market: SpotMarket) -> None:
    everything = tuple(
        r["RegionName"] for r in boto3.client("ec2").describe_regions(AllRegions=True)["Regions"]
    )
    with pytest.raises(InputError, match="every usable region is excluded"):
        spot_offers(args(excluded=everything))


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "AccessDenied"])
def test_without_placement_scores_it_ranks_on_price_and_warns(
    market: SpotMarket, caplog: pytest.LogCaptureFixture, code: str
) -> None:
    market.score_errors = {"*": code}
    with caplog.at_level(logging.WARNING, logger="mapt"):
        offers = spot_offers(args())
    assert all(o.score is None for o in offers)
    assert offers == sorted(offers, key=lambda o: (o.spot_price, o.region, o.availability_zone))
    assert "placement scores are unavailable" in caplog.text
    # Every usable region was priced, since none could be ruled out by score.
    assert len(market.calls_to("DescribeSpotPriceHistory")) >= 20
    # A refusal is the account's: each batch of 10 regions is asked once, at home, in
    # round 1 (the regions every account has, then the partition's others), never
    # elsewhere, and not again with the types in round 2: that would be refused too.
    asked = [c.region for c in market.calls_to("GetSpotPlacementScores")]
    assert asked == ["us-east-1"] * round_one_score_batches()
    assert all("InstanceTypes" not in c.params for c in market.calls_to("GetSpotPlacementScores"))
    assert "not asked again with the types" in caplog.text


def test_scores_that_fail_on_the_server_are_asked_again_with_the_types(
    market: SpotMarket, caplog: pytest.LogCaptureFixture
) -> None:
    # A 5xx everywhere is not the account's answer: round 2 scores the usable regions
    # by their types (home, then one more region, as in round 1), then ranks on price.
    market.score_errors = {"*": "InternalError"}
    with caplog.at_level(logging.WARNING, logger="mapt"):
        offers = spot_offers(args())
    assert offers and all(o.score is None for o in offers)
    asked = market.calls_to("GetSpotPlacementScores")
    by_types = [c for c in asked if "InstanceTypes" in c.params]
    usable = {c.region for c in market.calls_to("DescribeSpotPriceHistory")}
    assert len(asked) - len(by_types) == 2 * round_one_score_batches()
    assert len(by_types) == 2 * -(-len(usable) // 10)


def round_one_score_batches() -> int:
    """Round 1's score calls for a shape: 10 regions a call, the 17 regions every
    account has apart from the partition's others (botocore's endpoint data)."""
    partition = boto3.session.Session().get_available_regions("ec2")
    certain = len(ALWAYS_ENABLED_REGIONS)
    return -(-certain // 10) + -(-(len(partition) - certain) // 10)


def test_scores_are_asked_in_the_next_region_when_one_refuses(market: SpotMarket) -> None:
    market.score_errors = {"us-east-1": "InternalError"}
    result = spot_allocation(args(), home_region="us-east-1")
    asked = [c.region for c in market.calls_to("GetSpotPlacementScores")]
    # Each batch of 10 regions is asked in us-east-1 first, then once elsewhere.
    batches = round_one_score_batches()
    assert len(asked) == 2 * batches and asked.count("us-east-1") == batches
    assert result.score is not None


def test_no_eligible_az_is_exit_4_with_the_reason(market: SpotMarket) -> None:
    market.scores = {"use1-az4": 4, "eun1-az1": 3}
    with pytest.raises(NoEligibleOfferError) as raised:
        spot_offers(args())
    assert "score >= 7" in str(raised.value) and "best AZ found" in str(raised.value)
    assert raised.value.exit_code == 4


def test_a_pinned_zone_ranked_below_the_top_ten_is_the_choice(
    market: SpotMarket, monkeypatch: pytest.MonkeyPatch
) -> None:
    market.score_errors = {"*": "AccessDenied"}  # price alone: every priced AZ is eligible
    top = selection.MAX_OFFERS
    monkeypatch.setattr(selection, "MAX_OFFERS", 1000)
    every = spot_offers(args())  # the whole ranking
    monkeypatch.setattr(selection, "MAX_OFFERS", top)
    assert len(every) > top
    eleventh = every[top]
    result = spot_allocation(replace(args(), availability_zone=eleventh.availability_zone))
    assert (result.availability_zone, result.spot_price) == (
        eleventh.availability_zone,
        eleventh.spot_price,
    )
    # The nine best other offers follow, in rank order, as its candidates.
    assert [c.availability_zone for c in result.candidates] == [
        o.availability_zone for o in every[: top - 1]
    ]


def test_image_filter_keeps_only_regions_with_the_image(market: SpotMarket) -> None:
    ec2 = boto3.client("ec2", region_name="eu-north-1")
    ec2.register_image(Name="mapt-test-rhel-9.4-x86_64", RootDeviceName="/dev/sda1")
    chosen = AllocationArgs(
        compute_request=ComputeRequest(compute_sizes=("m5.large", "m6i.large", "t3.large")),
        spot=SpotArgs(tolerance="medium"),
        ami_name="mapt-test-rhel-9.4-*",
    )
    offers = spot_offers(chosen)
    assert {o.region for o in offers} == {"eu-north-1"}


def test_fresh_allocation_stays_within_its_call_budget(market: SpotMarket, aws: ApiCallLog) -> None:
    spot_allocation(args())
    regions = [r for r in boto3.client("ec2").describe_regions()["Regions"]]
    made = aws.count() - 1  # the describe_regions just above
    assert made <= 2 * len(regions) + 4
    usable = [
        r
        for r in boto3.client("ec2").describe_regions(AllRegions=True)["Regions"]
        if r["OptInStatus"] != "not-opted-in"
    ]
    # GetSpotPlacementScores takes 10 regions a call; a shape's are asked in round 1,
    # for every region of the partition, which may be enabled, the usable ones kept.
    assert len(usable) == 20
    assert aws.count("GetSpotPlacementScores") == round_one_score_batches()
    # Then only the regions with an AZ scoring 7 (tolerance "lowest") or more are asked.
    passing = {"us-east-1", "eu-north-1", "eu-west-1", "ap-northeast-1", "ap-south-1", "us-west-2"}
    priced = {c.region for c in aws.calls if c.operation == "DescribeSpotPriceHistory"}
    assert priced == passing


def test_no_type_of_that_shape_names_the_nearest(market: SpotMarket) -> None:
    with pytest.raises(NoMatchingInstanceTypesError) as raised:
        spot_offers(args(cpus=3, memory_gib=7, compute_families=()))
    message = str(raised.value)
    assert "3 vCPUs and 7 GiB" in message and "Nearest sizes that exist:" in message
    assert raised.value.exit_code == 2


def test_explicit_sizes_must_exist(market: SpotMarket) -> None:
    with pytest.raises(InputError, match=r"m5\.huge"):
        spot_offers(args(compute_sizes=("m5.large", "m5.huge")))


def test_explicit_sizes_replace_the_shape(market: SpotMarket) -> None:
    offers = spot_offers(args(cpus=64, memory_gib=1, compute_sizes=("m5.large", "t3.large")))
    assert all(set(o.instance_types) == {"m5.large", "t3.large"} for o in offers)


def test_on_demand_comparison_adds_prices_when_pricing_answers(market: SpotMarket) -> None:
    offers = spot_offers(args())
    rows = on_demand_comparison(offers, "Linux/UNIX")
    best = rows[0]
    on_demand = max(
        market.row(t, best["availability_zone_id"]).on_demand_price for t in best["instance_types"]
    )
    assert best["on_demand_price"] == pytest.approx(on_demand)
    assert best["saving_percent"] == pytest.approx(
        (1 - best["spot_price"] / on_demand) * 100, abs=0.1
    )


def test_on_demand_comparison_is_absent_when_pricing_fails(market: SpotMarket) -> None:
    market.pricing_error = "AccessDeniedException"
    rows = on_demand_comparison(spot_offers(args()), "Linux/UNIX")
    assert rows and all(
        "on_demand_price" not in row and "saving_percent" not in row for row in rows
    )


MARKET_REGIONS = sorted(
    {"us-east-1", "eu-north-1", "eu-west-1", "ap-northeast-1", "ap-south-1", "us-west-2"}
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(excluded=st.lists(st.sampled_from(MARKET_REGIONS), max_size=4, unique=True))
def test_property_excluded_regions_never_appear(market: SpotMarket, excluded: list[str]) -> None:
    try:
        offers = spot_offers(args(tolerance="highest", excluded=tuple(excluded)))
    except NoEligibleOfferError:
        return
    assert not {o.region for o in offers} & set(excluded)
    for offer in offers:
        for name in offer.instance_types:
            assert market.row(name, offer.availability_zone_id).spot_price is not None


def test_pricing_calls_ask_every_pair_once_and_fit_one_page() -> None:
    from mapt.allocation._ec2 import pricing_batches

    types = [f"m{i}.metal-{i}xl" for i in range(93)]
    regions = [f"xx-region-{i}" for i in range(34)]
    batches = pricing_batches(types, regions)
    pairs = [
        (t, r) for batch_types, batch_regions in batches for t in batch_types for r in batch_regions
    ]
    assert sorted(pairs) == sorted((t, r) for t in types for r in regions)
    for batch_types, batch_regions in batches:
        assert len(batch_types) * len(batch_regions) <= 80  # one document a pair, 100 a page
        assert len(",".join(batch_types)) <= 1024 and len(",".join(batch_regions)) <= 1024
