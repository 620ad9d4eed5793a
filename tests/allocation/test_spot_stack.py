"""The ``spotOption-<project>`` stack keeps the spot choice: re-runs ask EC2 nothing."""

from __future__ import annotations

import pytest

from mapt.allocation import AllocationArgs, AllocationResult, ComputeRequest, SpotArgs, allocation
from mapt.core import OperationError, RunContext
from mapt.stacks import InMemoryEngine, StackRef
from tests.harness.spot_market import ApiCallLog, SpotMarket

ARGS = AllocationArgs(
    compute_request=ComputeRequest(
        cpus=2, memory_gib=8, compute_families=("m5", "m6a", "m6i", "m7a", "m7i", "t3", "t3a")
    ),
    spot=SpotArgs(tolerance="low"),
)
CONTEXT = RunContext(project_name="demo", backend_url="file:///tmp/mapt-test-state")


@pytest.fixture
def market(spot_market: SpotMarket) -> SpotMarket:
    spot_market.scores = {"use1-az4": 9, "eun1-az1": 9, "aps1-az1": 8, "usw2-az1": 7}
    return spot_market


def test_first_run_saves_the_choice_as_stack_outputs(market: SpotMarket) -> None:
    engine = InMemoryEngine()
    result = allocation(CONTEXT, ARGS, engine=engine)
    ref = StackRef.for_context(CONTEXT, "spotOption")
    assert ref.stack_name == "spotOption-demo"
    outputs = engine.outputs(ref)
    assert outputs["region"] == result.region and outputs["az"] == result.availability_zone
    assert outputs["az_id"] == result.availability_zone_id
    assert outputs["instance_types"] == list(result.instance_types)
    assert outputs["spot_price"] == result.spot_price and outputs["max_price"] == result.max_price
    assert outputs["score"] == result.score
    assert len(outputs["candidates"]) == len(result.candidates)
    assert engine.resources(ref) == []  # a stack of outputs only


def test_second_run_returns_the_kept_choice_with_zero_ec2_calls(
    market: SpotMarket, aws: ApiCallLog
) -> None:
    engine = InMemoryEngine()
    first = allocation(CONTEXT, ARGS, engine=engine)
    before = aws.count()
    # The market moves: without the stack the choice would change.
    market.scores = {"eun1-az2": 10}
    again = allocation(CONTEXT, ARGS, engine=engine)
    assert again == first
    assert aws.count() == before
    assert len(market.calls_to("DescribeSpotPriceHistory")) > 0  # only from the first run


def test_projects_do_not_share_a_choice(market: SpotMarket) -> None:
    engine = InMemoryEngine()
    allocation(CONTEXT, ARGS, engine=engine)
    allocation(
        RunContext(project_name="other", backend_url=CONTEXT.backend_url), ARGS, engine=engine
    )
    assert sorted(engine.stack_names()) == ["spotOption-demo", "spotOption-other"]


@pytest.mark.parametrize(
    "garble",
    [
        lambda o: o.pop("region"),
        lambda o: o.update(instance_types=[]),
        lambda o: o.update(spot_price="cheap"),
        lambda o: o.update(spot_price=None),
        lambda o: o.update(candidates=[{"region": "x"}]),
    ],
)
def test_garbled_outputs_name_the_stack_and_the_way_out(market: SpotMarket, garble) -> None:  # type: ignore[no-untyped-def]
    engine = InMemoryEngine()
    result = allocation(CONTEXT, ARGS, engine=engine)
    ref = StackRef.for_context(CONTEXT, "spotOption")
    outputs = engine.outputs(ref)
    garble(outputs)

    def program() -> None:
        import pulumi

        for name, value in outputs.items():
            pulumi.export(name, value)

    engine.up(ref, program)
    with pytest.raises(OperationError) as raised:
        allocation(CONTEXT, ARGS, engine=engine)
    assert "spotOption-demo" in str(raised.value)
    assert "mapt aws host destroy --project-name demo" in str(raised.value)
    assert isinstance(result, AllocationResult)


def test_the_choice_stack_is_tied_to_no_region(market: SpotMarket) -> None:
    """No provider config: destroying it needs neither a region nor the chosen one."""
    engine = InMemoryEngine()
    allocation(CONTEXT, ARGS, engine=engine)
    assert engine.config(StackRef.for_context(CONTEXT, "spotOption")) == {}


def test_fail_over_keeps_the_runner_up_and_remembers_the_failure(
    market: SpotMarket, aws: ApiCallLog
) -> None:
    from mapt.allocation import fail_over

    engine = InMemoryEngine()
    first = allocation(CONTEXT, ARGS, engine=engine)
    assert first.candidates
    before = aws.count()

    second = fail_over(CONTEXT, first, "InsufficientInstanceCapacity", engine=engine)

    assert second is not None and second.offer == first.candidates[0]
    assert second.candidates == first.candidates[1:]
    assert [(f.offer, f.reason) for f in second.failed] == [
        (first.offer, "InsufficientInstanceCapacity")
    ]
    # A re-run reads the moved choice back, failures included, still with no EC2 call.
    assert allocation(CONTEXT, ARGS, engine=engine) == second
    assert aws.count() == before


def test_fail_over_with_no_candidate_left_forgets_the_choice(market: SpotMarket) -> None:
    from mapt.allocation import fail_over

    engine = InMemoryEngine()
    only = allocation(CONTEXT, ARGS, engine=engine)
    last = AllocationResult(**vars(only.offer))  # no runner-up
    assert fail_over(CONTEXT, last, "SpotMaxPriceTooLow", engine=engine) is None
    assert engine.stack_names() == []


def test_an_on_demand_fallback_is_kept_and_read_back(market: SpotMarket) -> None:
    from mapt.allocation import FailedOffer, keep_on_demand_fallback

    engine = InMemoryEngine()
    spot = allocation(CONTEXT, ARGS, engine=engine)
    fallback = AllocationResult(
        region=spot.region,
        availability_zone=spot.availability_zone,
        availability_zone_id=spot.availability_zone_id,
        instance_types=spot.instance_types,
        spot_price=None,
        max_price=None,
        score=None,
        failed=(FailedOffer(spot.offer, "UnfulfillableCapacity"),),
    )
    keep_on_demand_fallback(CONTEXT, fallback, engine=engine)
    again = allocation(CONTEXT, ARGS, engine=engine)
    assert again == fallback and not again.is_spot
    with pytest.raises(ValueError, match="failed spot offers"):
        keep_on_demand_fallback(CONTEXT, AllocationResult(**vars(spot.offer)), engine=engine)
