"""``AwsHostTarget.refresh_ip`` on the sandbox: a host created by ``mapt aws host create
--sandbox`` gets a new Elastic IP through the engine (the old one released, the state
naming the new one), and a host without an address of its own is refused untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mapt.cli._sandbox import sandbox_services
from mapt.core import InputError
from mapt.hosts import AwsHostTarget, create_request
from tests.harness.spot_market import ApiCallLog
from tests.sandbox.test_host_sandbox import (
    FAMILIES,
    TAG,
    Sandbox,
    client,
    created,
    tagged,
    writes,
)

REGION = "eu-north-1"


@pytest.fixture
def sandbox(endpoint: ApiCallLog, tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def _request(sandbox: Sandbox, *extra: tuple[str, Any]) -> Any:
    """The request of ``Sandbox.create``'s host, as a caller of the library builds it."""
    fields = {
        "os": "fedora",
        "project_name": "demo",
        "backed_url": sandbox.backend,
        "cpus": 2,
        "memory": 8,
        "compute_families": FAMILIES,
        "conn_details_output": str(sandbox.conn),
        **dict(extra),
    }
    return create_request(fields)


def _target(sandbox: Sandbox, region: str) -> AwsHostTarget:
    return AwsHostTarget(sandbox_services(region=region, backend_url=sandbox.backend))


def _addresses(region: str) -> dict[str, str]:
    """The project's Elastic IPs that exist: public IP -> the instance it is on ('' none)."""
    found = client("ec2", region).describe_addresses(
        Filters=[{"Name": f"tag:{TAG}", "Values": ["demo"]}]
    )["Addresses"]
    return {a["PublicIp"]: a.get("InstanceId", "") for a in found}


def test_an_on_demand_host_gets_a_new_elastic_ip_and_the_old_one_is_released(
    sandbox: Sandbox,
) -> None:
    document = created(sandbox.create("--region", REGION))
    old = document["outputs"]["host"]
    [instance] = set(_addresses(REGION).values())
    assert _addresses(REGION) == {old: instance}

    change = _target(sandbox, REGION).refresh_ip(_request(sandbox, ("region", REGION)))

    assert change.old_address == old and change.new_address != old
    # One address, the new one, on the same machine: the old one is released.
    assert _addresses(REGION) == {change.new_address: instance}
    assert tagged(REGION)["instance"] == [instance]
    # The state names the new address, and the connection file says it.
    assert sandbox.hosts()["demo"]["host"] == change.new_address
    assert sandbox.connection("host") == change.new_address
    assert change.host.address == change.new_address
    assert change.to_dict()["new_address"] == change.new_address

    # A later create of the same host keeps the new address (nothing left to replace).
    again = created(sandbox.create("--region", REGION))
    assert again["outputs"]["host"] == change.new_address
    assert _addresses(REGION) == {change.new_address: instance}
    assert sandbox.destroy().exit_code == 0
    assert tagged(REGION) == {}


def test_a_spot_host_behind_its_load_balancer_is_refused_and_left_as_it_is(
    sandbox: Sandbox, endpoint: ApiCallLog
) -> None:
    document = created(sandbox.create("--spot"))
    region = document["allocation"]["region"]
    before = _addresses(region)
    calls = len(endpoint.calls)

    with pytest.raises(InputError) as refused:
        _target(sandbox, region).refresh_ip(_request(sandbox, ("spot", True)))

    assert str(refused.value).startswith("host 'demo' cannot get a new address: it runs on spot")
    assert refused.value.exit_code == 2
    assert writes(ApiCallLog(endpoint.calls[calls:])) == []
    assert _addresses(region) == before
    assert sandbox.destroy().exit_code == 0
