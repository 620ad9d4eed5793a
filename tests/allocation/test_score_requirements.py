"""A shape's placement-score requirements admit exactly the types section 1 matches.

``score_requirements`` translates a compute request into GetSpotPlacementScores'
``InstanceRequirementsWithMetadata`` so that the scores can be asked in round 1, before
DescribeInstanceTypes has answered. The replayed market evaluates those requirements
itself, over moto's catalogue, as AWS's attribute-based selection reads them
(``tests.harness.spot_market.admitted_types``, which shares no code with mapt); here
each rule of section 1 is checked against ``instance_types_for`` on the fixture market.
"""

from __future__ import annotations

import pytest

from mapt.allocation import ComputeRequest, NoMatchingInstanceTypesError
from mapt.allocation._allocation import instance_types_for
from mapt.allocation._ec2 import Ec2Queries
from mapt.allocation._selection import score_requirements
from tests.harness.spot_market import ApiCallLog, admitted_types

REQUESTS = {
    # Burstable (t3, t3a), current and previous generations, many families.
    "4 vCPU / 16 GiB": ComputeRequest(cpus=4, memory_gib=16),
    "96 vCPU / 768 GiB": ComputeRequest(cpus=96, memory_gib=768),
    # m3.medium is of the previous generation.
    "1 vCPU / 3.75 GiB": ComputeRequest(cpus=1, memory_gib=3.75),
    # g4dn.xlarge has a GPU, g6f.xlarge an eighth of one (a GPU count of 0): left out.
    "4 vCPU / 16 GiB arm64": ComputeRequest(cpus=4, memory_gib=16, arch="arm64"),
    "families": ComputeRequest(cpus=2, memory_gib=8, compute_families=("m5", "m6i", "t3")),
    # m7i-flex's family has a dash; m7i must not admit m7i-flex.
    "families with a dash": ComputeRequest(cpus=2, memory_gib=8, compute_families=("m7i",)),
    "nested virt": ComputeRequest(nested_virt=True),
    "nested virt arm64": ComputeRequest(nested_virt=True, arch="arm64"),
    "nested virt in families": ComputeRequest(nested_virt=True, compute_families=("c5", "m5")),
}


@pytest.mark.parametrize("name", REQUESTS)
def test_the_requirements_admit_exactly_the_matching_types(aws: ApiCallLog, name: str) -> None:
    request = REQUESTS[name]
    requirements = score_requirements(request)
    assert requirements is not None
    matching = instance_types_for(Ec2Queries(), "us-east-1", request, True)
    assert matching
    assert sorted(admitted_types(requirements)) == matching


def test_a_whole_float_cpu_count_matches_as_its_int(aws: ApiCallLog) -> None:
    # A library caller's or a JSON body's 4.0: AWS's vcpu filter is asked "4", not "4.0"
    # (which matches no type), and the scores' VCpuCount an integer.
    whole = ComputeRequest(cpus=4.0, memory_gib=16)  # type: ignore[arg-type]
    expected = instance_types_for(Ec2Queries(), "us-east-1", REQUESTS["4 vCPU / 16 GiB"], True)
    assert instance_types_for(Ec2Queries(), "us-east-1", whole, True) == expected
    assert score_requirements(whole) == score_requirements(REQUESTS["4 vCPU / 16 GiB"])


@pytest.mark.parametrize(
    "request_",
    [
        ComputeRequest(cpus=3, memory_gib=7),
        # vt1.3xlarge's only size: it has a media accelerator (a Xilinx U30).
        ComputeRequest(cpus=12, memory_gib=24),
    ],
    ids=["3 vCPU / 7 GiB", "12 vCPU / 24 GiB"],
)
def test_a_request_nothing_matches_is_admitted_nowhere(
    aws: ApiCallLog, request_: ComputeRequest
) -> None:
    requirements = score_requirements(request_)
    assert requirements is not None and admitted_types(requirements) == set()
    with pytest.raises(NoMatchingInstanceTypesError):
        instance_types_for(Ec2Queries(), "us-east-1", request_, True)


@pytest.mark.parametrize(
    "request_",
    [
        ComputeRequest(compute_sizes=("m5.large",)),  # named: scored by name, as asked
        # GPUs: g6f's fractional GPU counts 0; AWS does not say how it counts it.
        ComputeRequest(gpus=1),
        ComputeRequest(cpus=4, gpu_manufacturer="nvidia"),
    ],
    ids=["named", "any GPU", "nvidia"],
)
def test_requests_without_exact_requirements_keep_the_type_list(request_: ComputeRequest) -> None:
    assert score_requirements(request_) is None
