"""Which hosts have a public address of their own to exchange (``refresh_ip``), read from
their host stack's outputs as the programs export them."""

from __future__ import annotations

from typing import Any

import pytest

from mapt.stacks import StackRef
from mapt.targets.aws import host_address_urn, public_address_refusal

ON_DEMAND = {"host": "203.0.113.7", "spot": False, "region": "eu-north-1"}


@pytest.mark.parametrize(
    ("outputs", "refusal"),
    [
        (ON_DEMAND, None),
        ({**ON_DEMAND, "spot": True}, "it runs on spot: its address is its load balancer's"),
        (
            {**ON_DEMAND, "host": "10.0.101.10", "bastion_host": "198.51.100.2"},
            "it is air-gapped: it has no public address",
        ),
        ({"host": "203.0.113.7"}, "its host stack has no 'spot' output"),
    ],
    ids=["on-demand", "spot", "air-gapped", "unknown"],
)
def test_only_an_on_demand_public_host_has_an_address_to_exchange(
    outputs: dict[str, Any], refusal: str | None
) -> None:
    found = public_address_refusal(outputs)
    if refusal is None:
        assert found is None
    else:
        assert found is not None and found.startswith(refusal), found


def test_the_address_is_the_on_demand_hosts_elastic_ip_in_its_stack() -> None:
    ref = StackRef("pr-1", "host")
    assert host_address_urn(ref) == "urn:pulumi:host-pr-1::pr-1::aws:ec2/eip:Eip::host-eip"
