"""An image lookup that fails is AWS's error, never "the image is not there"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from mapt.allocation import AllocationArgs, ComputeRequest, SpotArgs, spot_offers
from mapt.core import MaptError, OperationError, PrerequisiteError
from tests.allocation.test_score_failures import error_answer
from tests.harness.spot_market import SpotMarket, installed

IMAGE = "mapt-test-rhel-9.4-*"


@pytest.fixture
def market(spot_market: SpotMarket) -> SpotMarket:
    """Scores in us-east-1 and eu-north-1; the image exists in eu-north-1 only."""
    spot_market.scores = {"use1-az4": 9, "eun1-az1": 9}
    ec2 = boto3.client("ec2", region_name="eu-north-1")
    ec2.register_image(Name=IMAGE.replace("*", "x86_64"), RootDeviceName="/dev/sda1")
    return spot_market


def with_image() -> AllocationArgs:
    return AllocationArgs(
        compute_request=ComputeRequest(compute_sizes=("m5.large", "m6i.large", "t3.large")),
        spot=SpotArgs(tolerance="medium"),
        ami_name=IMAGE,
    )


def failing_in(region: str | None, status: int, code: str) -> Callable[..., Any]:
    """DescribeImages answers AWS's ``code`` in ``region`` (None: everywhere)."""
    fail = error_answer(status, code)

    def answer(context: dict[str, Any], **kwargs: Any) -> Any:
        if region is None or context.get("client_region") == region:
            return fail(**kwargs)
        return None  # moto answers

    return answer


FAILURES = {
    "throttled": (400, "RequestLimitExceeded", OperationError, "throttled"),
    "refused": (403, "UnauthorizedOperation", OperationError, "UnauthorizedOperation"),
    "server error": (500, "InternalError", OperationError, "InternalError"),
    "bad credentials": (401, "AuthFailure", PrerequisiteError, "credentials are not valid"),
}


@pytest.mark.parametrize(("status", "code", "kind", "said"), FAILURES.values(), ids=FAILURES.keys())
def test_failed_lookups_everywhere_are_aws_error_not_a_wrong_name(
    market: SpotMarket, status: int, code: str, kind: type[MaptError], said: str
) -> None:
    with (
        installed([("before-call.ec2.DescribeImages", failing_in(None, status, code))]),
        pytest.raises(MaptError) as raised,
    ):
        spot_offers(with_image())
    assert type(raised.value) is kind and said in str(raised.value)
    assert "DescribeImages" in str(raised.value) and "not found" not in str(raised.value)
    assert raised.value.exit_code == (5 if kind is PrerequisiteError else 1)


def test_a_region_whose_lookup_failed_is_not_left_out_silently(market: SpotMarket) -> None:
    # The image is found in eu-north-1; us-east-1's answer is unknown, and its zone
    # scores as well: ranking without it could pick a worse offer and not say so.
    refusing = failing_in("us-east-1", 403, "UnauthorizedOperation")
    with (
        installed([("before-call.ec2.DescribeImages", refusing)]),
        pytest.raises(OperationError, match=r"DescribeImages in us-east-1 failed"),
    ):
        spot_offers(with_image())
