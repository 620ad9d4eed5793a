"""The ranking equals a brute force over every matching type (no name-ordered cap).

The brute force here shares no code with mapt: it reads the matching types straight
from moto's DescribeInstanceTypes, and the prices and scores straight from the market
it serves, and ranks every AZ by the rule of specs/concepts/allocation.md section 5:
the bid is the n-th cheapest price (n = min(types, 8)), cheapest first, then the
higher score, then region and AZ name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapt.allocation import (
    AllocationArgs,
    ComputeRequest,
    NoEligibleOfferError,
    SpotArgs,
    spot_offers,
)
from tests.harness.spot_market import MarketRow, SpotMarket, installed, moto_zone_names

Ranked = list[tuple[float, str, tuple[str, ...]]]
_MATCHING: dict[tuple[Any, ...], list[str]] = {}


def matching_types(cpus: int = 0, memory_gib: int = 0, nested_virt: bool = False) -> list[str]:
    """The x86_64 spot types of this shape (or bare metal), per moto's DescribeInstanceTypes."""
    key = (cpus, memory_gib, nested_virt)
    if key not in _MATCHING:
        pages = boto3.client("ec2", region_name="us-east-1").get_paginator(
            "describe_instance_types"
        )
        if nested_virt:
            filters = {"bare-metal": "true"}
        else:
            filters = {
                "vcpu-info.default-vcpus": str(cpus),
                "memory-info.size-in-mib": str(memory_gib * 1024),
            }
        names = []
        for page in pages.paginate(
            Filters=[{"Name": k, "Values": [v]} for k, v in filters.items()]
        ):
            for item in page["InstanceTypes"]:
                if "x86_64" not in item["ProcessorInfo"]["SupportedArchitectures"]:
                    continue
                if "spot" not in item.get("SupportedUsageClasses", ["spot"]):
                    continue
                if nested_virt:
                    keep = bool(item.get("BareMetal"))
                else:
                    accelerated = any(
                        item.get(k)
                        for k in (
                            "GpuInfo",
                            "InferenceAcceleratorInfo",
                            "FpgaInfo",
                            "NeuronInfo",
                            "MediaAcceleratorInfo",
                        )
                    )
                    keep = (
                        not accelerated
                        and item["VCpuInfo"]["DefaultVCpus"] == cpus
                        and item["MemoryInfo"]["SizeInMiB"] == memory_gib * 1024
                    )
                if keep:
                    names.append(item["InstanceType"])
        _MATCHING[key] = sorted(names)
    return _MATCHING[key]


def brute_force(market: SpotMarket, types: Sequence[str], min_score: int) -> Ranked:
    """Every AZ's offer over all ``types``, ranked; the top 10 as (bid, AZ ID, types)."""
    needed = min(len(types), 8)
    wanted = set(types)
    priced: dict[str, list[tuple[float, str]]] = {}
    region_of: dict[str, str] = {}
    for row in market.rows:
        if row.spot_price and row.instance_type in wanted:
            priced.setdefault(row.az_id, []).append((float(row.spot_price), row.instance_type))
            region_of[row.az_id] = row.region
    offers = []
    for az_id, prices in priced.items():
        score = market.scores.get(az_id)
        if score is None or score < min_score or len(prices) < needed:
            continue
        chosen = sorted(prices)[:needed]
        key = (chosen[-1][0], -score, region_of[az_id], market.az_name(az_id))
        offers.append((key, az_id, tuple(name for _, name in chosen)))
    return [(key[0], az_id, names) for key, az_id, names in sorted(offers)[:10]]


def ranked(request: ComputeRequest, tolerance: str, excluded: Sequence[str] = ()) -> Ranked:
    args = AllocationArgs(
        compute_request=request, spot=SpotArgs(tolerance=tolerance, excluded_regions=excluded)
    )
    try:
        offers = spot_offers(args)
    except NoEligibleOfferError:
        return []
    return [(o.spot_price or 0.0, o.availability_zone_id, o.instance_types) for o in offers]


# -- the fixture market (tests/data/spot-market.csv.gz) --------------------------------

REQUESTS = {
    # 35 types match; the fixture prices 8 of them, 4 among the first 20 by name.
    "96 vCPU / 768 GiB": (ComputeRequest(cpus=96, memory_gib=768), {"cpus": 96, "memory_gib": 768}),
    # 92 bare-metal types; the fixture prices 18, 5 among the first 20 by name.
    "nested virt": (ComputeRequest(nested_virt=True), {"nested_virt": True}),
}


@pytest.fixture
def scored_market(spot_market: SpotMarket) -> SpotMarket:
    """Every AZ of the fixture scored 1-10 (a fixed spread), every score answered."""
    zones = sorted({row.az_id for row in spot_market.rows})
    spot_market.scores = {az_id: 1 + index % 10 for index, az_id in enumerate(zones)}
    spot_market.top_scores = 1000
    return spot_market


@pytest.mark.parametrize("tolerance,min_score", [("medium", 3), ("lowest", 7)])
@pytest.mark.parametrize("name", REQUESTS)
def test_fixture_market_ranking_is_the_brute_force_over_every_matching_type(
    scored_market: SpotMarket, name: str, tolerance: str, min_score: int
) -> None:
    request, shape = REQUESTS[name]
    types = matching_types(**shape)
    assert len(types) > 20
    expected = brute_force(scored_market, types, min_score)
    assert expected, "the fixture must have offers for this request"
    assert ranked(request, tolerance) == expected


# -- generated markets ------------------------------------------------------------------

MARKET_REGIONS = ("us-east-1", "eu-north-1", "ap-south-1", "us-west-2")


@st.composite
def markets(draw: st.DrawFn, types: Sequence[str]) -> tuple[list[MarketRow], dict[str, int]]:
    """Rows pricing a random subset of ``types`` in each AZ of 1-2 regions, and scores."""
    regions = draw(st.lists(st.sampled_from(MARKET_REGIONS), min_size=1, max_size=2, unique=True))
    zones = moto_zone_names()
    rows, scores = [], {}
    for region in regions:
        for az_id in sorted(z for z, (r, _) in zones.items() if r == region)[:3]:
            scores[az_id] = draw(st.integers(1, 10))
            offered = draw(st.lists(st.sampled_from(types), min_size=6, max_size=14, unique=True))
            for name in offered:
                price = draw(st.integers(1, 400)) / 1000
                rows.append(MarketRow(name, 0, 0, 1.0, f"{price:.6f}", region, az_id))
    return rows, scores


@pytest.fixture
def moto_regions(aws: Any) -> Iterator[list[str]]:
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    yield [region.name for region in RegionsAndZonesBackend.regions]


def check_generated(
    moto_regions: list[str],
    market: tuple[list[MarketRow], dict[str, int]],
    request: ComputeRequest,
    types: list[str],
    tolerance: str,
    min_score: int,
) -> None:
    rows, scores = market
    regions = {row.region for row in rows}
    generated = SpotMarket(rows=rows, scores=scores, top_scores=1000)
    excluded = [r for r in moto_regions if r not in regions]  # only the generated ones
    with installed(generated.handlers()):
        assert ranked(request, tolerance, excluded) == brute_force(generated, types, min_score)


SETTINGS = settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(data=st.data(), tolerance=st.sampled_from([("medium", 3), ("low", 5)]))
def test_generated_shape_market_ranking_is_the_brute_force(
    moto_regions: list[str], data: st.DataObject, tolerance: tuple[str, int]
) -> None:
    types = matching_types(cpus=4, memory_gib=16)  # 30 types: t3, t3a, m8i sort last
    assert len(types) > 20
    market = data.draw(markets(types))
    check_generated(moto_regions, market, ComputeRequest(cpus=4, memory_gib=16), types, *tolerance)


@SETTINGS
@given(data=st.data())
def test_generated_bare_metal_market_ranking_is_the_brute_force(
    moto_regions: list[str], data: st.DataObject
) -> None:
    types = matching_types(nested_virt=True)
    market = data.draw(markets(types))
    check_generated(moto_regions, market, ComputeRequest(nested_virt=True), types, "high", 2)
