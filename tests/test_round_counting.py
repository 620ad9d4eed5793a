"""``CallTimeline`` counts rounds by dependency: late starts for want of CPU do not count.

The calls are answered in-process (a ``before-call`` handler), after the timeline has
held them for a short latency; no AWS and no moto.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.harness.rounds import CallTimeline
from tests.harness.spot_market import installed

LATENCY = 0.05


def _answer(model: Any, **_: Any) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse("https://ec2.amazonaws.com/", 200, {}, None), {"Regions": []}


@pytest.fixture
def timeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[CallTimeline]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    timeline = CallTimeline(latency=LATENCY, services=("ec2", "sts"))
    handlers = [*timeline.handlers(), ("before-call.ec2", _answer), ("before-call.sts", _answer)]
    with installed(handlers), timeline.following_dependencies():
        yield timeline


def _call() -> None:
    import boto3

    boto3.client("ec2", region_name="us-east-1").describe_regions()


def test_a_call_started_late_without_waiting_for_an_answer_is_in_the_first_round(
    timeline: CallTimeline,
) -> None:
    first_ended = threading.Event()

    def first() -> None:
        _call()
        first_ended.set()

    def late() -> None:
        # Held back, as a CPU-starved thread would be, until the first call has ended:
        # an event, not a sleep, so that a slow first call on a loaded machine cannot
        # end after it. The thread never uses the first call's answer.
        first_ended.wait(timeout=60)
        _call()

    with ThreadPoolExecutor(max_workers=2) as pool:
        one, two = pool.submit(first), pool.submit(late)
        one.result(), two.result()

    assert timeline.rounds() == 2  # by wall-clock order: the late call started after
    assert timeline.dependency_rounds() == 1


def test_a_call_made_with_another_calls_answer_is_a_round_later(timeline: CallTimeline) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        pool.submit(_call).result()
        pool.submit(_call).result()  # submitted by a thread that had the first answer
        _call()  # and once more on this thread, which has both
    assert timeline.dependency_rounds() == 3


def test_calls_queued_behind_a_full_pool_are_a_round_later(timeline: CallTimeline) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        list(pool.map(lambda _: _call(), range(3)))
    assert timeline.dependency_rounds() == 3


def test_a_call_of_another_service_made_with_an_answer_is_a_round_later_overall(
    timeline: CallTimeline,
) -> None:
    import boto3

    with ThreadPoolExecutor(max_workers=2) as pool:
        pool.submit(_call).result()
        pool.submit(lambda: boto3.client("sts", region_name="us-east-1").get_caller_identity())
    assert (timeline.dependency_rounds("ec2"), timeline.dependency_rounds("sts")) == (1, 1)
    assert timeline.dependency_rounds() == 2


def _answer_on_the_wire(request: Any, **_: Any) -> Any:
    """The answer to a sent request, as the bytes AWS would send (no network)."""
    from botocore.awsrequest import AWSResponse

    body = b"<DescribeRegionsResponse><regionInfo/></DescribeRegionsResponse>"

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    return AWSResponse(request.url, 200, {}, Raw())


@pytest.mark.parametrize(("hold", "sent_after_the_wait"), [("first", True), ("on the wire", False)])
def test_a_calls_latency_is_held_before_its_request_is_built_or_after_it_is_sent(
    monkeypatch: pytest.MonkeyPatch, hold: str, sent_after_the_wait: bool
) -> None:
    import time

    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sent: list[float] = []

    def send(request: Any, **kwargs: Any) -> Any:
        sent.append(time.monotonic())
        return _answer_on_the_wire(request, **kwargs)

    latency = 0.2
    timeline = CallTimeline(latency=latency, services=("ec2",), hold=hold)
    with installed([*timeline.handlers(), ("before-send.ec2", send)]):
        boto3.client("ec2", region_name="us-east-1").describe_regions()
    (call,) = timeline.calls
    assert call.end - call.start >= latency  # held either way
    assert (sent[0] - call.start >= latency) is sent_after_the_wait


def test_a_hold_on_the_wire_needs_the_services_and_other_holds_are_refused() -> None:
    with pytest.raises(ValueError, match="needs the services"):
        CallTimeline(latency=0.1, hold="on the wire").handlers()
    with pytest.raises(ValueError, match="'later'"):
        CallTimeline(latency=0.1, services=("ec2",), hold="later").handlers()
