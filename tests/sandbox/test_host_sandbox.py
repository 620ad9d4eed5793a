"""``mapt aws host create --sandbox`` end to end against a ``moto_server`` on loopback.

The CLI runs in-process with its real services (the sandbox engine, readiness by the
instance's state); every resource the host programs declare is made on the server,
and the assertions ask the server, through boto3, what exists, as a user would with
the AWS CLI. Nothing here stubs the engine, the kinds or the state.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.spot_market import _PARAMS_KEY, ApiCallLog, _response, installed
from tests.sandbox.conftest import REGIONS

FAMILIES = "m5,m6a,m6i,m7a,m7i,t3,t3a"
TAG = "mapt:project"
# Calls that change something on AWS.
WRITES = ("Create", "Delete", "Run", "Put", "Register", "Modify", "Associate", "Allocate",
          "Attach", "Authorize", "Release", "Terminate", "Update", "Set")  # fmt: skip

runner = CliRunner()


class Sandbox:
    """The CLI on the sandbox, with one state folder and connection folder per test."""

    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "state"
        self.backend = f"file://{self.state}"
        self.conn = tmp_path / "conn"

    def invoke(self, *args: str) -> Any:
        return runner.invoke(app, list(args))

    def create(self, *extra: str, os_name: str = "fedora", project: str = "demo") -> Any:
        """``create --sandbox``; a 2 vCPU, 8 GiB machine unless ``extra`` names the types."""
        shape = [] if "--compute-sizes" in extra else [
            "--cpus", "2", "--memory", "8", "--compute-families", FAMILIES,
        ]  # fmt: skip
        return self.invoke(
            "aws", "host", "create", "--sandbox", "--os", os_name, "--project-name", project,
            "--backed-url", self.backend, *shape, "--conn-details-output", str(self.conn),
            "--output", "json", *extra,
        )  # fmt: skip

    def destroy(self, project: str = "demo") -> Any:
        return self.invoke(
            "aws", "host", "destroy", "--sandbox", "--project-name", project,
            "--backed-url", self.backend,
        )  # fmt: skip

    def hosts(self) -> dict[str, Any]:
        listed = self.invoke(
            "aws", "host", "list", "--backed-url", self.backend, "--output", "json"
        )
        assert listed.exit_code == 0, listed.output
        return {host["project"]: host for host in json.loads(listed.stdout)["hosts"]}

    def connection(self, name: str) -> str:
        return (self.conn / name).read_text().strip()


@pytest.fixture
def sandbox(endpoint: ApiCallLog, tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # AWS_ENDPOINT_URL: the server


def tagged(region: str, project: str = "demo") -> dict[str, list[str]]:
    """Every resource tagged ``mapt:project=<project>`` that still exists, by kind."""
    ec2, tag = client("ec2", region), [{"Name": f"tag:{TAG}", "Values": [project]}]
    found: dict[str, list[str]] = {
        "vpc": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]],
        "subnet": [s["SubnetId"] for s in ec2.describe_subnets(Filters=tag)["Subnets"]],
        "security-group": [
            g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]
        ],
        "instance": [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=tag)["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] not in ("terminated", "shutting-down")
        ],
        "address": [a["AllocationId"] for a in ec2.describe_addresses(Filters=tag)["Addresses"]],
        "key-pair": [k["KeyName"] for k in ec2.describe_key_pairs(Filters=tag)["KeyPairs"]],
        "launch-template": [
            t["LaunchTemplateId"]
            for t in ec2.describe_launch_templates(Filters=tag)["LaunchTemplates"]
        ],
        "internet-gateway": [
            g["InternetGatewayId"]
            for g in ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]
        ],
        "nat-gateway": [
            n["NatGatewayId"]
            for n in ec2.describe_nat_gateways(Filters=tag)["NatGateways"]
            if n["State"] not in ("deleted", "deleting")
        ],
    }
    groups = client("autoscaling", region).describe_auto_scaling_groups()["AutoScalingGroups"]
    found["auto-scaling-group"] = [
        g["AutoScalingGroupName"]
        for g in groups
        if any(t["Key"] == TAG and t["Value"] == project for t in g.get("Tags", []))
    ]
    elb = client("elbv2", region)
    balancers = [b["LoadBalancerArn"] for b in elb.describe_load_balancers()["LoadBalancers"]]
    described = elb.describe_tags(ResourceArns=balancers)["TagDescriptions"] if balancers else []
    found["load-balancer"] = [
        d["ResourceArn"]
        for d in described
        if any(t["Key"] == TAG and t["Value"] == project for t in d["Tags"])
    ]
    return {kind: ids for kind, ids in found.items() if ids}


# The taggable types the host programs declare, by the kind ``tagged`` finds them as.
TAGGABLE = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "security-group",
    "aws:ec2/instance:Instance": "instance",
    "aws:ec2/eip:Eip": "address",
    "aws:ec2/keyPair:KeyPair": "key-pair",
    "aws:ec2/launchTemplate:LaunchTemplate": "launch-template",
    "aws:ec2/internetGateway:InternetGateway": "internet-gateway",
    "aws:ec2/natGateway:NatGateway": "nat-gateway",
    "aws:autoscaling/group:Group": "auto-scaling-group",
    "aws:lb/loadBalancer:LoadBalancer": "load-balancer",
}


def untagged(sandbox: Sandbox, region: str) -> list[str]:
    """The host stack's taggable resources (by its checkpoint) AWS holds without the tag."""
    path = sandbox.state / ".pulumi" / "stacks" / "demo" / "host-demo.json"
    resources = json.loads(path.read_text())["checkpoint"]["latest"]["resources"]
    found = tagged(region)
    taggable = [r for r in resources if r["type"] in TAGGABLE]
    assert len(taggable) >= 6  # VPC, subnet, gateway, groups, key pair, machine...
    return [r["urn"] for r in taggable if r["id"] not in found.get(TAGGABLE[r["type"]], [])]


def created(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def writes(calls: ApiCallLog) -> list[str]:
    return [c.operation for c in calls.calls if c.operation.startswith(WRITES)]


# -- spot and on-demand, per operating system -------------------------------------------


@pytest.mark.parametrize("os_name", ["fedora", "rhel", "windows"])
def test_spot_create_makes_a_group_with_one_instance_in_service_in_the_chosen_zone(
    sandbox: Sandbox, endpoint: ApiCallLog, os_name: str
) -> None:
    document = created(sandbox.create("--spot", os_name=os_name))

    allocation = document["allocation"]
    region, zone = allocation["region"], allocation["availability_zone"]
    assert region in REGIONS
    [group] = client("autoscaling", region).describe_auto_scaling_groups(
        AutoScalingGroupNames=["mapt-host-demo"]
    )["AutoScalingGroups"]
    [instance] = group["Instances"]
    assert instance["LifecycleState"] == "InService" and instance["AvailabilityZone"] == zone
    [reservation] = client("ec2", region).describe_instances(InstanceIds=[instance["InstanceId"]])[
        "Reservations"
    ]
    tags = {t["Key"]: t["Value"] for t in reservation["Instances"][0]["Tags"]}
    assert tags[TAG] == "demo"
    assert reservation["Instances"][0]["InstanceType"] in allocation["instance_types"]
    made = tagged(region)
    assert {"vpc", "subnet", "launch-template", "load-balancer", "address"} <= set(made)
    assert untagged(sandbox, region) == []  # everything the stack made carries the tag
    # The host's address is the load balancer's Elastic IP, which stays when spot
    # replaces the instance.
    [address] = client("ec2", region).describe_addresses(
        Filters=[{"Name": f"tag:{TAG}", "Values": ["demo"]}]
    )["Addresses"]
    assert sandbox.connection("host") == address["PublicIp"] == document["outputs"]["host"]
    assert sandbox.connection("id_rsa").startswith("-----BEGIN RSA PRIVATE KEY-----")
    host = sandbox.hosts()["demo"]
    assert (host["region"], host["spot"]) == (region, True)

    assert sandbox.destroy().exit_code == 0
    assert tagged(region) == {}
    assert sandbox.hosts() == {}


@pytest.mark.parametrize("os_name", ["fedora", "rhel", "windows"])
def test_on_demand_create_makes_one_instance_addressed_by_its_elastic_ip(
    sandbox: Sandbox, endpoint: ApiCallLog, os_name: str
) -> None:
    document = created(sandbox.create("--region", "eu-north-1", os_name=os_name))

    zone = document["allocation"]["availability_zone"]
    ec2 = client("ec2", "eu-north-1")
    [instance] = [
        i
        for r in ec2.describe_instances(Filters=[{"Name": f"tag:{TAG}", "Values": ["demo"]}])[
            "Reservations"
        ]
        for i in r["Instances"]
    ]
    assert instance["State"]["Name"] == "running"
    assert instance["Placement"]["AvailabilityZone"] == zone
    [address] = ec2.describe_addresses(
        Filters=[{"Name": "instance-id", "Values": [instance["InstanceId"]]}]
    )["Addresses"]
    assert sandbox.connection("host") == address["PublicIp"]
    assert "auto-scaling-group" not in tagged("eu-north-1")
    assert untagged(sandbox, "eu-north-1") == []
    assert sandbox.hosts()["demo"]["spot"] is False

    assert sandbox.destroy().exit_code == 0
    assert tagged("eu-north-1") == {}


@pytest.mark.parametrize(
    "placement", [["--spot"], ["--region", "eu-north-1"]], ids=["spot", "on-demand"]
)
def test_a_second_create_changes_nothing(
    sandbox: Sandbox, endpoint: ApiCallLog, placement: list[str]
) -> None:
    first = created(sandbox.create(*placement))
    region = first["allocation"]["region"]
    before = tagged(region)
    endpoint.calls.clear()

    # Three re-runs: an on-demand zone drawn afresh each time (one in three) would move
    # the host, replacing its subnet, on at least one of them almost surely.
    for _ in range(3):
        again = created(sandbox.create(*placement))
        assert again["allocation"]["availability_zone"] == first["allocation"]["availability_zone"]
        assert again["outputs"]["host"] == first["outputs"]["host"]

    assert writes(endpoint) == []
    assert tagged(region) == before


def test_air_gapped_host_behind_a_bastion_loses_its_nat_after_bootstrap(
    sandbox: Sandbox, endpoint: ApiCallLog
) -> None:
    document = created(sandbox.create("--region", "eu-north-1", "--airgap"))

    ec2 = client("ec2", "eu-north-1")
    instances = {
        {t["Key"]: t["Value"] for t in i["Tags"]}["Name"]: i
        for r in ec2.describe_instances(Filters=[{"Name": f"tag:{TAG}", "Values": ["demo"]}])[
            "Reservations"
        ]
        for i in r["Instances"]
    }
    bastion, host = instances["mapt-bastion"], instances["mapt-host"]
    assert sandbox.connection("bastion_host") == bastion["PublicIpAddress"]
    assert sandbox.connection("bastion_username") == "ec2-user"
    # The host has no public address: it is reached through the bastion.
    assert sandbox.connection("host") == host["PrivateIpAddress"] == document["outputs"]["host"]
    assert "PublicIpAddress" not in host
    assert untagged(sandbox, "eu-north-1") == []
    # The second phase removed the bootstrap NAT gateway and its route.
    made = tagged("eu-north-1")
    assert "nat-gateway" not in made
    routes = ec2.describe_route_tables(Filters=[{"Name": f"tag:{TAG}", "Values": ["demo"]}])
    assert not [r for t in routes["RouteTables"] for r in t["Routes"] if r.get("NatGatewayId")]

    assert sandbox.destroy().exit_code == 0
    assert tagged("eu-north-1") == {}


# -- failures -------------------------------------------------------------------------------


UNKNOWN_TYPE = "m9z.mega"


def _listing_an_unknown_type(model: Any, context: dict[str, Any], **_: Any) -> Any:
    """DescribeInstanceTypes/-Offerings answering for ``UNKNOWN_TYPE`` as for a real type.

    mapt checks ``--compute-sizes`` against DescribeInstanceTypes before anything is
    made (exit 2): to reach the launch, the listing claims the type exists, as it would
    for a type the account's region lists but the endpoint's launch refuses. The
    refusal itself is the server's (MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION=true).
    """
    params = context.get(_PARAMS_KEY, {})  # the call's parameters, kept by the market
    if model.name == "DescribeInstanceTypes" and UNKNOWN_TYPE in params.get("InstanceTypes", []):
        described = {
            "InstanceType": UNKNOWN_TYPE,
            "CurrentGeneration": True,
            "SupportedUsageClasses": ["on-demand", "spot"],
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
            "VCpuInfo": {"DefaultVCpus": 2},
            "MemoryInfo": {"SizeInMiB": 8192},
            "BareMetal": False,
        }
        return _response(200), {"InstanceTypes": [described]}
    wanted = [f.get("Values", []) for f in params.get("Filters", [])]
    if model.name == "DescribeInstanceTypeOfferings" and [UNKNOWN_TYPE] in wanted:
        offering = {"InstanceType": UNKNOWN_TYPE, "LocationType": "availability-zone"}
        zones = ("eu-north-1a", "eu-north-1b", "eu-north-1c")
        return _response(200), {
            "InstanceTypeOfferings": [{**offering, "Location": z} for z in zones]
        }
    return None


def test_a_refused_instance_type_fails_create_with_awss_message_and_keeps_state(
    sandbox: Sandbox, endpoint: ApiCallLog
) -> None:
    with installed([("before-call.ec2", _listing_an_unknown_type)]):
        result = sandbox.create("--region", "eu-north-1", "--compute-sizes", UNKNOWN_TYPE)

    assert result.exit_code == 1, result.output
    [line] = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert line.startswith("Error:") and UNKNOWN_TYPE in line and "RunInstances" in line
    # What was made before the refusal is in the state: destroy removes it.
    assert "vpc" in tagged("eu-north-1")
    assert "demo" in sandbox.hosts()
    assert sandbox.destroy().exit_code == 0
    assert tagged("eu-north-1") == {}


def test_sweep_removes_what_a_sandbox_create_left_after_its_state_was_deleted(
    sandbox: Sandbox, endpoint: ApiCallLog
) -> None:
    created(sandbox.create("--region", "eu-north-1", project="lost"))
    created(sandbox.create("--region", "eu-north-1", project="kept"))
    shutil.rmtree(sandbox.state / ".pulumi" / "stacks" / "lost")  # state deleted by hand

    swept = sandbox.invoke(
        "aws", "sweep", "--backed-url", sandbox.backend, "--regions", "eu-north-1",
        "--output", "json",
    )  # fmt: skip

    assert swept.exit_code == 0, swept.output
    assert tagged("eu-north-1", "lost") == {}
    assert {"vpc", "instance"} <= set(tagged("eu-north-1", "kept"))
    assert sandbox.destroy("kept").exit_code == 0
    assert tagged("eu-north-1", "kept") == {}


def test_timeout_tags_what_aws_holds_with_the_expiry_and_schedules_the_group_to_zero(
    sandbox: Sandbox, endpoint: ApiCallLog
) -> None:
    from datetime import datetime, timedelta, timezone

    before = datetime.now(timezone.utc).replace(microsecond=0)
    region = created(sandbox.create("--spot", "--timeout", "1h30m"))["allocation"]["region"]

    ec2 = client("ec2", region)
    expiring = [{"Name": "tag-key", "Values": ["mapt:expires-at"]}]
    stamps = {
        t["Value"]
        for kind in (
            ec2.describe_vpcs(Filters=expiring)["Vpcs"],
            ec2.describe_subnets(Filters=expiring)["Subnets"],
            [
                i
                for r in ec2.describe_instances(Filters=expiring)["Reservations"]
                for i in r["Instances"]
            ],
        )
        for resource in kind
        for t in resource["Tags"]
        if t["Key"] == "mapt:expires-at"
    }
    [stamp] = stamps
    expires = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert timedelta(minutes=90) <= expires - before <= timedelta(minutes=91)
    [action] = client("autoscaling", region).describe_scheduled_actions(
        AutoScalingGroupName="mapt-host-demo"
    )["ScheduledUpdateGroupActions"]
    assert (action["MinSize"], action["MaxSize"], action["DesiredCapacity"]) == (0, 0, 0)
    assert action["StartTime"] == expires


NO_CAPACITY = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
    "capacity available that matches your request. Launching EC2 instance failed."
)


class NoCapacityInFirstRegion:
    """The first region a spot group is checked in has no capacity, as AWS reports it.

    moto fulfils every spot request at once, so the refusal is written into Auto
    Scaling's answers there (after-call: the group shows no instance, its newest
    launch activity failed with AWS's wording); everything else is the server's.
    """

    def __init__(self) -> None:
        self.region: str | None = None

    def __call__(
        self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        region = context.get("client_region")
        if model.name == "DescribeAutoScalingGroups":
            self.region = self.region or region
            if region == self.region:
                for group in parsed.get("AutoScalingGroups", []):
                    group["Instances"] = []
        elif model.name == "DescribeScalingActivities" and region == self.region:
            from datetime import datetime, timezone

            parsed["Activities"] = [
                {
                    "ActivityId": "refused-1",
                    "AutoScalingGroupName": "mapt-host-demo",
                    "Description": "Launching a new EC2 instance.  Status Reason: " + NO_CAPACITY,
                    "Cause": "At 2026-12-01T08:00:00Z a user request created an AutoScalingGroup.",
                    "StartTime": datetime.now(timezone.utc),
                    "StatusCode": "Failed",
                    "StatusMessage": NO_CAPACITY,
                }
            ]


def test_a_refused_spot_launch_destroys_what_it_made_and_deploys_on_the_next_candidate(
    sandbox: Sandbox, endpoint: ApiCallLog
) -> None:
    refusing = NoCapacityInFirstRegion()
    with installed([("after-call.autoscaling", refusing)]):
        document = created(sandbox.create("--spot"))

    failed_region, region = refusing.region, document["allocation"]["region"]
    assert failed_region in REGIONS and region in REGIONS and region != failed_region
    # The failed attempt's stack was destroyed on the endpoint, not just forgotten.
    assert tagged(str(failed_region)) == {}
    [group] = client("autoscaling", region).describe_auto_scaling_groups(
        AutoScalingGroupNames=["mapt-host-demo"]
    )["AutoScalingGroups"]
    assert [i["LifecycleState"] for i in group["Instances"]] == ["InService"]
    assert sandbox.hosts()["demo"]["region"] == region


def test_state_in_an_s3_bucket_on_the_endpoint(
    sandbox: Sandbox, endpoint: ApiCallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = client("s3", "us-east-1")
    s3.create_bucket(Bucket="mapt-state")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "shared by every runner")
    sandbox.backend = "s3://mapt-state/ci"

    document = created(sandbox.create("--region", "eu-north-1"))

    key = "ci/.pulumi/stacks/demo/host-demo.json"
    body = s3.get_object(Bucket="mapt-state", Key=key)["Body"].read().decode()
    assert document["outputs"]["host"] in body  # plain outputs as Pulumi keeps them
    assert "PRIVATE KEY" not in body  # the SSH key is encrypted with the passphrase
    assert sandbox.hosts()["demo"]["region"] == "eu-north-1"
    assert sandbox.destroy().exit_code == 0
    assert tagged("eu-north-1") == {}
    listed = s3.list_objects_v2(Bucket="mapt-state", Prefix="ci/.pulumi/stacks/")
    assert listed.get("KeyCount") == 0


def test_air_gapped_spot_host_is_reached_at_its_internal_balancers_fixed_address(
    sandbox: Sandbox, endpoint: ApiCallLog
) -> None:
    document = created(sandbox.create("--spot", "--airgap"))

    region = document["allocation"]["region"]
    elb = client("elbv2", region)
    [balancer] = elb.describe_load_balancers()["LoadBalancers"]
    assert balancer["Scheme"] == "internal"
    assert sandbox.connection("host") == "10.0.101.10" == document["outputs"]["host"]
    bastion = [
        i
        for r in client("ec2", region).describe_instances(
            Filters=[{"Name": "tag:Name", "Values": ["mapt-bastion"]}]
        )["Reservations"]
        for i in r["Instances"]
    ]
    assert [b["PublicIpAddress"] for b in bastion] == [sandbox.connection("bastion_host")]
    assert "nat-gateway" not in tagged(region)
    assert untagged(sandbox, region) == []

    assert sandbox.destroy().exit_code == 0
    assert tagged(region) == {}
