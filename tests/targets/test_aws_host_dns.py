"""A host's stable name (``--dns-zone``) in the host program under Pulumi mocks, and the
create's repointing of a spot host without a load balancer (``deploy_host``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from mapt.core import InputError
from mapt.targets.aws import (
    RECORD_TTL_SECONDS,
    HostRequest,
    LaunchedInstance,
    check_zone_name,
    deploy_host,
    host_connection_values,
    host_output_names,
    public_address_refusal,
    recorded_instance,
)
from tests.harness.pulumi_mocks import FAKE_EIP, PulumiHarness
from tests.targets.test_aws_host_program import CTX, LB, ON_DEMAND, SPOT, of_type, one, run_host

RECORD = "aws:route53/record:Record"
EIP = "aws:ec2/eip:Eip"
ZONE = "ci.example.com"
ZONE_ID = "Z0123456789ABCDEFGHIJ"
NAMED = HostRequest("fedora", dns_zone=ZONE, dns_zone_id=ZONE_ID)
INSTANCE = LaunchedInstance("i-0aaa", "203.0.113.7")


def test_a_named_spot_host_has_a_record_at_its_instance_and_no_load_balancer() -> None:
    run, _ = run_host(SPOT, NAMED, instance=INSTANCE)
    record = one(run, RECORD)
    assert record.inputs["zoneId"] == ZONE_ID
    assert record.inputs["name"] == f"ci-42.{ZONE}"
    assert (record.inputs["type"], record.inputs["ttl"]) == ("A", RECORD_TTL_SECONDS)
    assert record.inputs["records"] == ["203.0.113.7"]
    assert not of_type(run, LB)
    assert not of_type(run, "aws:lb/targetGroup:TargetGroup")
    assert not of_type(run, EIP)  # the balancer's Elastic IP went with it
    group = one(run, "aws:autoscaling/group:Group")
    assert not group.inputs.get("targetGroupArns")
    outputs = run.plain_outputs()
    assert outputs["host"] == "203.0.113.7"
    assert outputs["instance_id"] == "i-0aaa"
    assert outputs["dns_name"] == f"ci-42.{ZONE}"
    assert set(run.outputs) == set(host_output_names(NAMED, spot=True))


def test_before_its_group_launched_a_named_spot_host_has_no_address_and_no_record() -> None:
    run, _ = run_host(SPOT, NAMED)
    assert not of_type(run, RECORD)
    assert "host" not in run.outputs and "dns_name" not in run.outputs
    one(run, "aws:autoscaling/group:Group")


def test_the_load_balancer_flag_keeps_the_balancer_and_points_the_name_at_it() -> None:
    run, _ = run_host(SPOT, replace(NAMED, spot_load_balancer=True))
    one(run, LB)
    record = one(run, RECORD)
    assert record.inputs["records"] == [FAKE_EIP]
    assert run.plain_outputs()["host"] == FAKE_EIP
    assert "instance_id" not in run.outputs


def test_a_named_on_demand_host_points_its_name_at_its_elastic_ip() -> None:
    run, _ = run_host(ON_DEMAND, NAMED)
    assert one(run, RECORD).inputs["records"] == [FAKE_EIP]
    assert run.plain_outputs()["dns_name"] == f"ci-42.{ZONE}"


def test_without_a_zone_nothing_changes() -> None:
    run, _ = run_host(SPOT, HostRequest("fedora"))
    assert not of_type(run, RECORD)
    one(run, LB)
    assert "dns_name" not in run.outputs and "instance_id" not in run.outputs


def test_a_zone_that_was_not_looked_up_fails_the_program_instead_of_leaving_the_name_out() -> None:
    with pytest.raises(Exception, match="was not looked up"):
        run_host(ON_DEMAND, HostRequest("fedora", dns_zone=ZONE))


@pytest.mark.parametrize("bad", ["example", "-ci.example.com", "ci..example.com", "ci_x.com"])
def test_a_bad_zone_name_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(InputError, match=f"--dns-zone '{bad}'"):
        HostRequest("fedora", dns_zone=bad)


def test_zone_names_are_kept_lower_case_without_the_trailing_dot() -> None:
    assert check_zone_name("CI.Example.com.") == "ci.example.com"


def test_an_air_gapped_host_cannot_have_a_public_name() -> None:
    with pytest.raises(InputError, match="--airgap"):
        HostRequest("fedora", airgap=True, dns_zone=ZONE)


def test_the_host_file_holds_the_name_and_the_address_file_the_address() -> None:
    values = host_connection_values(
        {"host": "203.0.113.7", "dns_name": f"ci-42.{ZONE}", "username": "fedora"}
    )
    assert values == {"host": f"ci-42.{ZONE}", "address": "203.0.113.7", "username": "fedora"}
    assert host_connection_values({"host": "203.0.113.7"}) == {"host": "203.0.113.7"}


def test_a_spot_host_pointed_at_its_instance_is_refused_a_new_elastic_ip() -> None:
    refusal = public_address_refusal({"spot": True, "instance_id": "i-0aaa"})
    assert refusal is not None and "without a load balancer" in refusal


# -- deploy_host: pointing the name at the group's instance --------------------------------


class FakeUps:
    """Runs each program under mocks; keeps the record values each ``up`` declared."""

    def __init__(self) -> None:
        self.records: list[list[str] | None] = []

    def __call__(self, program: Callable[[], None]) -> Mapping[str, Any]:
        run = PulumiHarness().run(program)
        found = of_type(run, RECORD)
        self.records.append(found[0].inputs["records"] if found else None)
        return run.plain_outputs()


def deploy(
    launched: LaunchedInstance, recorded: LaunchedInstance | None, ups: FakeUps
) -> tuple[dict[str, Any], list[str]]:
    waited: list[str] = []
    outputs = deploy_host(
        CTX,
        SPOT,
        NAMED,
        up=ups,
        wait=lambda access: waited.append(access.target.host),
        launched=lambda: launched,
        recorded_instance=recorded,
    )
    return outputs, waited


def test_a_new_host_is_pointed_at_the_instance_its_group_launched() -> None:
    ups = FakeUps()
    outputs, waited = deploy(INSTANCE, None, ups)
    # The first up makes the group (no address yet), the second points the name.
    assert ups.records == [None, ["203.0.113.7"]]
    assert outputs["host"] == "203.0.113.7" and recorded_instance(outputs) == INSTANCE
    assert waited == ["203.0.113.7"]  # readiness at the instance's own address


def test_a_re_run_after_a_replacement_repoints_the_name_to_the_new_instance() -> None:
    ups = FakeUps()
    replacement = LaunchedInstance("i-0bbb", "198.51.100.9")
    outputs, waited = deploy(replacement, INSTANCE, ups)
    # The name keeps the old address until the launch check names the new instance.
    assert ups.records == [["203.0.113.7"], ["198.51.100.9"]]
    assert outputs["instance_id"] == "i-0bbb" and outputs["host"] == "198.51.100.9"
    assert waited == ["198.51.100.9"]


def test_a_re_run_on_the_same_instance_runs_one_up_and_keeps_the_name() -> None:
    ups = FakeUps()
    outputs, _ = deploy(INSTANCE, INSTANCE, ups)
    assert ups.records == [["203.0.113.7"]]
    assert outputs["host"] == "203.0.113.7"


def test_the_load_balancer_flag_without_a_zone_or_spot_is_refused() -> None:
    from mapt.hosts import create_request

    base = {"project_name": "x", "os": "fedora", "spot_load_balancer": True}
    with pytest.raises(InputError, match=r"--spot-load-balancer .* applies only with --dns-zone"):
        create_request({**base, "spot": True})
    with pytest.raises(InputError, match=r"--spot-load-balancer .* applies only with --spot"):
        create_request({**base, "dns_zone": ZONE})
    request = create_request({**base, "spot": True, "dns_zone": "CI.example.com."})
    assert request.host.dns_zone == ZONE and request.host.load_balanced(True)
