"""Placement scores that come back as garbage are "scores unavailable", not a crash."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.parsers import ResponseParserError

from mapt.allocation import spot_offers
from mapt.core import PrerequisiteError
from tests.allocation.test_spot import args
from tests.harness.spot_market import SpotMarket, installed


def error_answer(status: int, code: str) -> Callable[..., Any]:
    def answer(**_: Any) -> Any:
        response = AWSResponse("https://ec2.amazonaws.com/", status, {}, None)
        return response, {"Error": {"Code": code, "Message": f"{code} (test)"}}

    return answer


def raising(error: Exception) -> Callable[..., Any]:
    def answer(**_: Any) -> Any:
        raise error

    return answer


GARBAGE = {
    "html page": raising(
        ResponseParserError("Unable to parse response (syntax error), invalid XML received")
    ),
    "not implemented": raising(
        NotImplementedError("The get_spot_placement_scores action has not been implemented")
    ),
    "server error": error_answer(500, "InternalError"),
}


@pytest.mark.parametrize("answer", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_scores_rank_on_price_alone_and_say_why(
    spot_market: SpotMarket, caplog: pytest.LogCaptureFixture, answer: Callable[..., Any]
) -> None:
    with (
        installed([("before-call.ec2.GetSpotPlacementScores", answer)]),
        caplog.at_level(logging.WARNING, logger="mapt"),
    ):
        offers = spot_offers(args())
    assert offers and all(o.score is None for o in offers)
    warning = next(r.getMessage() for r in caplog.records if "unavailable" in r.getMessage())
    assert "GetSpotPlacementScores in us-east-1 failed" in warning


def test_bad_credentials_on_scores_are_not_hidden_as_unavailable(spot_market: SpotMarket) -> None:
    with (
        installed([("before-call.ec2.GetSpotPlacementScores", error_answer(401, "AuthFailure"))]),
        pytest.raises(PrerequisiteError, match=r"GetSpotPlacementScores.*AuthFailure"),
    ):
        spot_offers(args())
