"""What an interrupted spot host does (pure): stay, move, or go on demand."""

from __future__ import annotations

import pytest

from mapt.core import OperationError
from mapt.hosts import BREAKER_OPEN, ReplacementPlan, plan_replacement
from mapt.targets.aws import GroupReplacement, SpotLaunchError

NO_CAPACITY = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
    "capacity available that matches your request. Launching EC2 instance failed."
)


def refused(code: str, message: str) -> GroupReplacement:
    return GroupReplacement(
        refused=SpotLaunchError(
            reason_code=code, status_message=message, group_name="mapt-host-pr-1",
            region="us-east-1",
        )
    )  # fmt: skip


@pytest.mark.parametrize("fallback", [False, True])
def test_a_replacement_in_place_keeps_the_host_there(fallback: bool) -> None:
    plan = plan_replacement(
        GroupReplacement(instance="i-new"),
        region="us-east-1",
        breaker_open=False,
        fallback_on_demand=fallback,
    )
    assert plan == ReplacementPlan() and plan.in_place


@pytest.mark.parametrize(
    ("code", "message"),
    [("InsufficientInstanceCapacity", NO_CAPACITY), ("timeout", "no replacement after 5m0s")],
)
def test_no_capacity_or_no_replacement_within_the_bound_moves_it_for_that_reason(
    code: str, message: str
) -> None:
    plan = plan_replacement(
        refused(code, message), region="us-east-1", breaker_open=False, fallback_on_demand=True
    )
    # On demand only once no spot candidate is left: the create path's failover decides.
    assert plan == ReplacementPlan(move_reason=code)
    assert not plan.in_place


@pytest.mark.parametrize("replacement", [None, GroupReplacement(instance="i-new")])
def test_an_open_breaker_leaves_the_region_whatever_the_group_did(
    replacement: GroupReplacement | None,
) -> None:
    spot = plan_replacement(
        replacement, region="eu-north-1", breaker_open=True, fallback_on_demand=False
    )
    assert spot == ReplacementPlan(move_reason=BREAKER_OPEN, avoid_regions=("eu-north-1",))
    on_demand = plan_replacement(
        replacement, region="eu-north-1", breaker_open=True, fallback_on_demand=True
    )
    assert on_demand == ReplacementPlan(
        move_reason=BREAKER_OPEN, avoid_regions=("eu-north-1",), on_demand=True
    )


def test_a_refusal_that_is_not_about_capacity_fails_with_awss_words() -> None:
    message = "The image id '[ami-0123]' does not exist. Launching EC2 instance failed."
    with pytest.raises(OperationError, match=r"The image id '\[ami-0123\]' does not exist"):
        plan_replacement(
            refused("LaunchFailed", message),
            region="us-east-1",
            breaker_open=False,
            fallback_on_demand=True,
        )


def test_without_an_open_breaker_the_group_must_have_been_asked() -> None:
    with pytest.raises(ValueError, match="needs what the group did"):
        plan_replacement(None, region="us-east-1", breaker_open=False, fallback_on_demand=False)
    with pytest.raises(ValueError, match="either an instance or a refusal"):
        GroupReplacement()
