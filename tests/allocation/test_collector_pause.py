"""A spot ranking queries without cyclic garbage collections, and leaves the collector on.

Building a client per region allocates hundreds of thousands of long-lived objects;
collections during the ranking only rescanned them (``collection_paused``).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mapt.allocation import AllocationArgs, ComputeRequest, SpotArgs, spot_offers
from mapt.allocation._ec2 import collection_paused
from tests.harness.spot_market import SpotMarket


@pytest.fixture
def collections() -> Iterator[list[str]]:
    """The thread of every cyclic collection that starts meanwhile."""
    started: list[str] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(threading.current_thread().name)

    gc.callbacks.append(record)
    try:
        yield started
    finally:
        gc.callbacks.remove(record)


def test_no_collection_runs_while_a_ranking_queries_and_the_collector_is_left_on(
    spot_market: SpotMarket, collections: list[str]
) -> None:
    spot_market.default_score = 8
    kept = ("eu-north-1", "eu-west-1", "us-east-1", "us-west-2")
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    excluded = tuple(r.name for r in RegionsAndZonesBackend.regions if r.name not in kept)
    args = AllocationArgs(
        compute_request=ComputeRequest(cpus=96, memory_gib=768),
        spot=SpotArgs(tolerance="low", excluded_regions=excluded),
    )
    assert gc.isenabled()
    offers = spot_offers(args)
    assert offers
    # The queries run on the pool's threads; the collector may run afterwards, once.
    assert [name for name in collections if name.startswith("ThreadPoolExecutor")] == []
    assert gc.isenabled()


def test_the_collector_resumes_when_the_last_of_overlapping_pauses_ends() -> None:
    # Two rankings at once in a service: the first to finish must not resume the
    # collector under the other, nor leave it off once both are done.
    first, second = collection_paused(), collection_paused()
    first.__enter__()
    second.__enter__()
    try:
        first.__exit__(None, None, None)
        assert not gc.isenabled()
    finally:  # a failed assertion must not leave the collector off for later tests
        second.__exit__(None, None, None)
    assert gc.isenabled()
