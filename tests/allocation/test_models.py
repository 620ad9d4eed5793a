"""Bad requests fail on construction, naming the bad value, before any AWS call."""

from __future__ import annotations

import math

import pytest

from mapt.allocation import AllocationResult, ComputeRequest, Offer, SpotArgs
from mapt.core import InputError


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"cpus": 0}, "cpus 0"),
        ({"cpus": -2}, "cpus -2"),
        ({"cpus": 2.5}, "cpus 2.5"),
        ({"memory_gib": 0}, "memory 0"),
        ({"memory_gib": -8}, "memory -8"),
        ({"memory_gib": math.nan}, "memory nan"),
        ({"arch": "sparc"}, "'sparc'"),
        ({"gpus": -1}, "gpus -1"),
        ({"cpus": 4097}, "cpus 4097 is more than 4096"),
        ({"memory_gib": 1e308}, "memory 1e+308 GiB is more than 65536 GiB"),
        ({"gpus": 17}, "gpus 17 is more than 16"),
        ({"gpu_manufacturer": "3dfx"}, "'3dfx'"),
        ({"compute_sizes": ("m5 large",)}, "'m5 large'"),
        ({"compute_families": ("m5.",)}, "'m5.'"),
    ],
)
def test_bad_compute_requests_name_the_value(kwargs: dict, named: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError) as raised:
        ComputeRequest(**kwargs)
    assert named in str(raised.value)
    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"tolerance": "extreme"}, "'extreme'"),
        ({"tolerance": "LOWEST"}, "'LOWEST'"),
        ({"increase_rate": -1}, "-1"),
        ({"increase_rate": math.inf}, "inf"),
        ({"excluded_regions": ("mars-north-1x",)}, "'mars-north-1x'"),
    ],
)
def test_bad_spot_args_name_the_value(kwargs: dict, named: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError) as raised:
        SpotArgs(**kwargs)
    assert named in str(raised.value)


@pytest.mark.parametrize(
    ("tolerance", "score"), [("lowest", 7), ("low", 5), ("medium", 3), ("high", 2), ("highest", 1)]
)
def test_tolerance_maps_to_minimum_score(tolerance: str, score: int) -> None:
    assert SpotArgs(tolerance=tolerance).min_score == score


def test_result_round_trips_through_plain_data() -> None:
    runner_up = Offer("eu-west-1", "eu-west-1b", "euw1-az2", ("m5.large",), 0.05, 0.065, None)
    result = AllocationResult(
        "eu-north-1",
        "eu-north-1a",
        "eun1-az1",
        ("t3.large", "m5.large"),
        0.04,
        0.052,
        8,
        candidates=(runner_up,),
    )
    data = result.to_dict()
    assert data["instance_types"] == ["t3.large", "m5.large"]
    assert AllocationResult.from_dict(data) == result
    assert result.is_spot
