"""On-demand placement: a region's zones in seedable random order, offered types only."""

from __future__ import annotations

import boto3
import pytest

from mapt.allocation import (
    AllocationArgs,
    ComputeRequest,
    NoSupportedInstanceTypesError,
    allocation,
    on_demand_allocation,
)
from mapt.core import InputError, RunContext
from tests.harness.spot_market import ApiCallLog

REQUEST = AllocationArgs(
    compute_request=ComputeRequest(
        compute_sizes=("m5.large", "t3.large", "a1.large"), arch="x86_64"
    )
)


def offered_in(zone: str, region: str) -> set[str]:
    ec2 = boto3.client("ec2", region_name=region)
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", Filters=[{"Name": "location", "Values": [zone]}]
    )
    return {o["InstanceType"] for page in pages for o in page["InstanceTypeOfferings"]}


def test_on_demand_returns_only_types_offered_in_the_zone(aws: ApiCallLog) -> None:
    args = AllocationArgs(compute_request=ComputeRequest(compute_sizes=("m5.large", "t3.large")))
    result = on_demand_allocation(args, "eu-north-1", seed=1)
    assert result.region == "eu-north-1" and result.spot_price is None and result.score is None
    assert set(result.instance_types) <= offered_in(result.availability_zone, "eu-north-1")
    assert result.availability_zone_id.startswith("eun1-az")


def test_the_zone_order_is_seedable(aws: ApiCallLog) -> None:
    args = AllocationArgs(compute_request=ComputeRequest(compute_sizes=("m5.large",)))
    first = on_demand_allocation(args, "eu-north-1", seed=7)
    assert on_demand_allocation(args, "eu-north-1", seed=7) == first
    zones = {on_demand_allocation(args, "eu-north-1", seed=s).availability_zone for s in range(12)}
    assert len(zones) > 1


def test_the_zone_a_host_runs_in_is_kept_while_it_offers_the_types(aws: ApiCallLog) -> None:
    args = AllocationArgs(compute_request=ComputeRequest(compute_sizes=("m5.large",)))
    first = on_demand_allocation(args, "eu-north-1", seed=7).availability_zone
    other = next(
        on_demand_allocation(args, "eu-north-1", seed=s).availability_zone
        for s in range(50)
        if on_demand_allocation(args, "eu-north-1", seed=s).availability_zone != first
    )
    kept = on_demand_allocation(args, "eu-north-1", seed=7, prefer_zone=other)
    assert kept.availability_zone == other
    # A zone that offers none of the types (or no longer exists) is not kept.
    gone = on_demand_allocation(args, "eu-north-1", seed=7, prefer_zone="eu-north-1z")
    assert gone.availability_zone == first


def test_types_offered_nowhere_in_the_region_is_exit_4(aws: ApiCallLog) -> None:
    args = AllocationArgs(compute_request=ComputeRequest(arch="arm64", compute_sizes=("a1.large",)))
    with pytest.raises(NoSupportedInstanceTypesError, match=r"a1\.large") as raised:
        on_demand_allocation(args, "eu-north-1")
    assert raised.value.exit_code == 4


def test_allocation_uses_the_context_region(
    aws: ApiCallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = AllocationArgs(compute_request=ComputeRequest(compute_sizes=("m5.large",)))
    result = allocation(RunContext(project_name="demo", region="eu-west-1"), args)
    assert result.region == "eu-west-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(InputError, match="--region"):
        allocation(RunContext(project_name="demo"), args)


def test_a_pinned_zone_is_the_choice_and_the_other_offering_zones_its_candidates(
    aws: ApiCallLog,
) -> None:
    """A pool spreads members by pinning each to a zone; the runner-ups tell it where
    the next ones can go."""
    from dataclasses import replace

    args = AllocationArgs(compute_request=ComputeRequest(compute_sizes=("m5.large",)))
    free = on_demand_allocation(args, "eu-north-1", seed=7)
    everywhere = [free.availability_zone, *(c.availability_zone for c in free.candidates)]
    assert sorted(everywhere) == ["eu-north-1a", "eu-north-1b", "eu-north-1c"]
    for candidate in free.candidates:
        assert set(candidate.instance_types) <= offered_in(
            candidate.availability_zone, "eu-north-1"
        )
    for zone in everywhere:
        pinned = on_demand_allocation(replace(args, availability_zone=zone), "eu-north-1", seed=7)
        assert pinned.availability_zone == zone
        assert {c.availability_zone for c in pinned.candidates} == set(everywhere) - {zone}

    with pytest.raises(InputError, match="availability_zone 'eu-north-1z' is not an availability"):
        on_demand_allocation(replace(args, availability_zone="eu-north-1z"), "eu-north-1")
