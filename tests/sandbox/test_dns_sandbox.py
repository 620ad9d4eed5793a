"""``mapt aws host create --spot --dns-zone Z --sandbox``: a stable Route53 name without a
load balancer, end to end against a ``moto_server`` on loopback.

The CLI runs in-process with its real services; the assertions ask the server through
boto3 what Route53, EC2 and Auto Scaling hold, as a user would with the AWS CLI. The
instance is replaced "behind mapt's back" as spot would: the group's instance is
terminated without lowering its desired capacity, and the group launches another.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from mapt.hosts import AwsHostTarget, create_request
from mapt.targets.aws import RECORD_TTL_SECONDS
from tests.harness.spot_market import ApiCallLog
from tests.sandbox.test_host_sandbox import Sandbox, client, created, tagged, writes

ZONE = "ci.example.com"
NAME = f"demo.{ZONE}"
GROUP = "mapt-host-demo"


@pytest.fixture
def zone_id(endpoint: ApiCallLog) -> str:
    """A public hosted zone on the (reset) server."""
    answer = client("route53", "us-east-1").create_hosted_zone(
        Name=ZONE, CallerReference=f"test-{time.monotonic_ns()}"
    )
    return str(answer["HostedZone"]["Id"]).rsplit("/", 1)[-1]


@pytest.fixture
def sandbox(endpoint: ApiCallLog, tmp_path: Any) -> Sandbox:
    return Sandbox(tmp_path)


def a_record(zone: str) -> tuple[int, list[str]] | None:
    """The TTL and values of the host's A record in the zone; None when it has none."""
    sets = client("route53", "us-east-1").list_resource_record_sets(HostedZoneId=zone)
    for found in sets["ResourceRecordSets"]:
        if found["Name"].rstrip(".") == NAME and found["Type"] == "A":
            return int(found["TTL"]), [r["Value"] for r in found["ResourceRecords"]]
    return None


def group_instance(region: str) -> str:
    [group] = client("autoscaling", region).describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP]
    )["AutoScalingGroups"]
    [instance] = [i for i in group["Instances"] if i["LifecycleState"] == "InService"]
    return str(instance["InstanceId"])


def public_ip(region: str, instance_id: str) -> str:
    [reservation] = client("ec2", region).describe_instances(InstanceIds=[instance_id])[
        "Reservations"
    ]
    return str(reservation["Instances"][0]["PublicIpAddress"])


def replaced_behind_mapts_back(region: str, old: str, deadline: float = 60) -> str:
    """Terminate the group's instance as spot would; the group's replacement's id."""
    client("autoscaling", region).terminate_instance_in_auto_scaling_group(
        InstanceId=old, ShouldDecrementDesiredCapacity=False
    )
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        try:
            current = group_instance(region)
        except ValueError:  # none in service, or more than one, for a moment
            current = old
        if current != old:
            return current
        time.sleep(0.2)
    raise AssertionError(f"the group launched no replacement for {old} in {deadline}s")


def test_a_named_spot_host_has_no_balancer_and_its_name_follows_a_replacement(
    sandbox: Sandbox, endpoint: ApiCallLog, zone_id: str
) -> None:
    document = created(sandbox.create("--spot", "--dns-zone", ZONE))
    region = document["allocation"]["region"]
    first = group_instance(region)
    address = public_ip(region, first)

    # The name is the host's, pointing at the group's instance; no load balancer.
    assert a_record(zone_id) == (RECORD_TTL_SECONDS, [address])
    assert "load-balancer" not in tagged(region)
    assert not client("elbv2", region).describe_load_balancers()["LoadBalancers"]
    assert sandbox.connection("host") == NAME
    assert sandbox.connection("address") == address
    assert document["outputs"]["dns_name"] == NAME
    assert document["outputs"]["host"] == address
    listed = sandbox.hosts()["demo"]
    assert (listed["dns_name"], listed["host"]) == (NAME, address)

    # Spot replaces the machine; a re-run of the same create repoints the name.
    second = replaced_behind_mapts_back(region, first)
    new_address = public_ip(region, second)
    assert new_address != address
    endpoint.calls.clear()
    again = created(sandbox.create("--spot", "--dns-zone", ZONE))
    assert again["outputs"]["host"] == new_address
    assert again["outputs"]["instance_id"] == second
    assert a_record(zone_id) == (RECORD_TTL_SECONDS, [new_address])
    # The name was repointed by one change (an UPSERT): never deleted and made again.
    route53 = [c.operation for c in endpoint.calls if c.service == "route53"]
    assert route53.count("ChangeResourceRecordSets") == 1, route53
    assert sandbox.connection("host") == NAME
    assert sandbox.connection("address") == new_address

    # A re-run on the same instance changes nothing on AWS.
    endpoint.calls.clear()
    created(sandbox.create("--spot", "--dns-zone", ZONE))
    assert writes(endpoint) == []

    assert sandbox.destroy().exit_code == 0
    assert a_record(zone_id) is None
    assert tagged(region) == {}


def test_repoint_points_the_name_at_the_groups_new_instance(
    sandbox: Sandbox, endpoint: ApiCallLog, zone_id: str
) -> None:
    from mapt.cli._sandbox import sandbox_services

    document = created(sandbox.create("--spot", "--dns-zone", ZONE))
    region = document["allocation"]["region"]
    first = group_instance(region)
    old = public_ip(region, first)
    second = replaced_behind_mapts_back(region, first)

    fields = {
        "project_name": "demo", "os": "fedora", "backed_url": sandbox.backend, "spot": True,
        "cpus": 2, "memory": 8, "compute_families": "m5,m6a,m6i,m7a,m7i,t3,t3a",
        "dns_zone": ZONE,
    }  # fmt: skip
    request = create_request(fields)
    target = AwsHostTarget(sandbox_services(region=region, backend_url=sandbox.backend))
    change = target.repoint(request)

    new = public_ip(region, second)
    assert (change.old_address, change.new_address) == (old, new)
    assert a_record(zone_id) == (RECORD_TTL_SECONDS, [new])
    assert sandbox.destroy().exit_code == 0


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("missing.example.com", "no public Route53 hosted zone"),
        ("not a zone", "is not a domain name"),
    ],
)
def test_a_missing_or_bad_zone_is_exit_2_before_any_aws_change(
    sandbox: Sandbox, endpoint: ApiCallLog, zone_id: str, zone: str, message: str
) -> None:
    endpoint.calls.clear()
    result = sandbox.create("--spot", "--dns-zone", zone)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("Error:") and message in line and repr(zone) in line
    assert writes(endpoint) == []
    assert sandbox.hosts() == {}
    assert not sandbox.state.exists() or not any(sandbox.state.rglob("*.json"))


def test_the_balancer_flag_keeps_the_balancer_and_the_name_points_at_its_address(
    sandbox: Sandbox, endpoint: ApiCallLog, zone_id: str
) -> None:
    document = created(sandbox.create("--spot", "--dns-zone", ZONE, "--spot-load-balancer"))
    region = document["allocation"]["region"]
    [balancer] = client("elbv2", region).describe_load_balancers()["LoadBalancers"]
    assert balancer["Type"] == "network"
    [eip] = client("ec2", region).describe_addresses()["Addresses"]
    assert a_record(zone_id) == (RECORD_TTL_SECONDS, [eip["PublicIp"]])
    assert json.loads(json.dumps(document["outputs"]))["host"] == eip["PublicIp"]
    assert sandbox.destroy().exit_code == 0
    assert a_record(zone_id) is None
