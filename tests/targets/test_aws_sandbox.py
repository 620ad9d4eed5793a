"""The sandbox kinds against moto in-process: what the programs declare, made for real.

Each host program runs under Pulumi mocks whose ``new_resource`` applies the resource
through its kind (``SANDBOX_KINDS``) and whose invokes are answered by
``SANDBOX_INVOKES``, as the sandbox engine does; then boto3 is asked what exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pulumi
import pytest
from botocore.exceptions import ClientError

from mapt.allocation import AllocationResult
from mapt.core import OperationError, RunContext
from mapt.stacks import ProgramRun, RecordingMocks, run_program
from mapt.targets.aws import (
    PHASE_BOOTSTRAP,
    SANDBOX_INVOKES,
    SANDBOX_KINDS,
    HostRequest,
    find_mapt_resources,
    host_program,
    wait_until_running,
)
from tests.harness.images import publish_image
from tests.harness.pulumi_mocks import PulumiHarness
from tests.harness.rsa_keys import reuse_within_process
from tests.harness.spot_market import ApiCallLog, _response, installed

REGION = "eu-west-1"
ZONE = "eu-west-1b"
CTX = RunContext("ci-42", tags={"team": "qe"})
SPOT = AllocationResult(
    region=REGION,
    availability_zone=ZONE,
    availability_zone_id="euw1-az3",
    instance_types=("m6i.2xlarge", "m5.2xlarge"),
    spot_price=0.1234,
    max_price=0.16042,
    score=9,
)
ON_DEMAND = replace(SPOT, spot_price=None, max_price=None, score=None)
GET_AMI = "aws:ec2/getAmi:getAmi"


class Endpoint:
    """The engine's side of the contract: clients of one region, made once each."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]


class ApplyingMocks(RecordingMocks):
    """Mocks that apply each resource through its kind and remember what was made."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.made: list[tuple[str, str, Mapping[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-id", dict(args.inputs)
        applied = SANDBOX_KINDS[args.typ].create(self.endpoint, args.name, dict(args.inputs))
        self.made.append((args.typ, applied.id, applied.outputs))
        return applied.id, dict(applied.outputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return dict(SANDBOX_INVOKES[args.token](self.endpoint, dict(args.args))), []

    def delete_all(self) -> None:
        """Delete what was made, last first (every resource after what it uses)."""
        for type_token, resource_id, outputs in reversed(self.made):
            SANDBOX_KINDS[type_token].delete(self.endpoint, resource_id, outputs)


@pytest.fixture(autouse=True)
def rsa_keys_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real RSA keys, distinct within a test, made once per process (speed)."""
    reuse_within_process(monkeypatch)


@pytest.fixture
def endpoint(aws: ApiCallLog) -> Endpoint:
    for name, owner in (
        ("RHEL-9.4.0_HVM-20240101-x86_64-Hourly2-GP3", "309956199498"),
        ("Fedora-Cloud-Base-AmazonEC2.x86_64-41-1.4", "125523088429"),
        ("Windows_Server-2022-English-Full-Base-2026.10.01", "amazon"),
        ("al2023-ami-2023.6.20261001.0-kernel-6.1-x86_64", "amazon"),
    ):
        publish_image(REGION, name, owner)
    return Endpoint()


def apply_host(
    endpoint: Endpoint, allocation: AllocationResult, request: HostRequest, **kwargs: Any
) -> tuple[ProgramRun, ApplyingMocks]:
    mocks = ApplyingMocks(endpoint)
    program = host_program(CTX, allocation, request, **kwargs)
    run = run_program(program, project="mapt", stack="host-ci-42", mocks=mocks, preview=False)
    return run, mocks


def instances(endpoint: Endpoint, *states: str) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-state-name", "Values": list(states)}]
    pages = endpoint.client("ec2").describe_instances(Filters=filters)["Reservations"]
    return [instance for reservation in pages for instance in reservation["Instances"]]


def tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


# Every valid combination the host program has (Windows cannot be air-gapped).
PROGRAMS = [
    pytest.param(alloc, os_name, airgap, id=f"{market}-{'airgap' if airgap else 'std'}-{os_name}")
    for market, alloc in (("spot", SPOT), ("ondemand", ON_DEMAND))
    for airgap in (False, True)
    for os_name in ("rhel", "fedora", "windows")
    if not (airgap and os_name == "windows")
]


def request_for(os_name: str, airgap: bool) -> HostRequest:
    return HostRequest(
        os=os_name,  # type: ignore[arg-type]
        airgap=airgap,
        service_endpoints=("s3", "ecr", "ssm") if airgap else (),
        expires_at=datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2),
    )


@pytest.mark.parametrize(("allocation", "os_name", "airgap"), PROGRAMS)
def test_every_resource_a_program_declares_has_a_kind_that_applies_all_its_inputs(
    allocation: AllocationResult, os_name: str, airgap: bool
) -> None:
    request = request_for(os_name, airgap)
    phases = [PHASE_BOOTSTRAP, None] if airgap else [None]
    for phase in phases:
        run = PulumiHarness(REGION).run(host_program(CTX, allocation, request, phase=phase))
        for resource in run.resources:
            if resource.type.startswith("pulumi:providers:"):
                continue
            kind = SANDBOX_KINDS.get(resource.type)
            assert kind is not None, f"no sandbox kind for {resource.type}"
            assert set(resource.inputs) <= kind.inputs, (resource.type, resource.name)


@pytest.mark.parametrize(("allocation", "os_name", "airgap"), PROGRAMS)
def test_a_host_program_made_on_the_endpoint_is_tagged_addressed_and_removed_whole(
    endpoint: Endpoint, allocation: AllocationResult, os_name: str, airgap: bool
) -> None:
    request = request_for(os_name, airgap)
    run, mocks = apply_host(
        endpoint, allocation, request, phase=PHASE_BOOTSTRAP if airgap else None
    )
    outputs = run.plain_outputs()
    ec2 = endpoint.client("ec2")
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "tag:mapt:project", "Values": ["ci-42"]}])["Vpcs"]
    assert tags(vpc)["mapt:stack"] == "host-ci-42" and tags(vpc)["team"] == "qe"
    running = instances(endpoint, "running")
    host_type = allocation.instance_types[0]
    (host,) = [i for i in running if i["InstanceType"] == host_type]
    assert host["Placement"]["AvailabilityZone"] == ZONE
    assert tags(host)["mapt:project"] == "ci-42"
    assert host["KeyName"].startswith("host-key-pair-")
    if allocation.is_spot:
        groups = endpoint.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[outputs["asg_name"]]
        )["AutoScalingGroups"]
        assert [(i["InstanceId"], i["LifecycleState"]) for i in groups[0]["Instances"]] == [
            (host["InstanceId"], "InService")
        ]
    if airgap:
        assert host["SubnetId"] != host.get("PublicIpAddress")
        assert not host.get("PublicIpAddress")
        (bastion,) = [i for i in running if i["InstanceType"] == "t3.small"]
        assert outputs["bastion_host"] == bastion["PublicIpAddress"]
        assert ec2.describe_nat_gateways()["NatGateways"][0]["State"] == "available"
        endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
        assert sorted(e["ServiceName"].rsplit(".", 1)[-1] for e in endpoints) == [
            "api", "dkr", "ec2messages", "s3", "ssm", "ssmmessages"
        ]  # fmt: skip
    if airgap and not allocation.is_spot:
        assert outputs["host"] == host["PrivateIpAddress"]
    elif not airgap:
        # The host's Elastic IP: on the instance, or on the spot host's load balancer.
        (address,) = ec2.describe_addresses(PublicIps=[outputs["host"]])["Addresses"]
        assert tags(address)["mapt:project"] == "ci-42"
        if not allocation.is_spot:
            assert address["InstanceId"] == host["InstanceId"]
    # Readiness in the sandbox: the machine at the address runs (a spot host's address
    # is its load balancer's, accepted once the group's instance is in service).
    session = boto3.Session(region_name=REGION)
    if allocation.is_spot:
        assert wait_until_running(session, REGION, outputs["host"], behind_balancer=True) is None
        with pytest.raises(OperationError, match=f"has address {outputs['host']}"):
            wait_until_running(session, REGION, outputs["host"], behind_balancer=False)
    else:
        ready = wait_until_running(session, REGION, outputs["host"], behind_balancer=False)
        assert ready == host["InstanceId"]
    if airgap:
        ready = wait_until_running(session, REGION, outputs["bastion_host"], behind_balancer=False)
        assert ready == bastion["InstanceId"]
    assert find_mapt_resources(session, [REGION])

    mocks.delete_all()
    assert find_mapt_resources(boto3.Session(region_name=REGION), [REGION]) == []
    assert instances(endpoint, "pending", "running", "stopping", "stopped") == []
    mocks.delete_all()  # what is already gone is not an error


def test_an_input_a_kind_does_not_apply_is_refused_before_anything_is_called(
    endpoint: Endpoint, aws: ApiCallLog
) -> None:
    before = len(aws.calls)
    with pytest.raises(OperationError, match="instanceTenancy of aws:ec2/vpc:Vpc 'vpc'"):
        SANDBOX_KINDS["aws:ec2/vpc:Vpc"].create(
            endpoint, "vpc", {"cidrBlock": "10.0.0.0/16", "instanceTenancy": "dedicated"}
        )
    assert aws.calls[before:] == []


def vpc(endpoint: Endpoint) -> str:
    return SANDBOX_KINDS["aws:ec2/vpc:Vpc"].create(endpoint, "vpc", {"cidrBlock": "10.0.0.0/16"}).id


def test_a_subnet_outside_its_vpc_fails_with_the_endpoints_error(endpoint: Endpoint) -> None:
    vpc_id = vpc(endpoint)
    with pytest.raises(ClientError) as refused:
        SANDBOX_KINDS["aws:ec2/subnet:Subnet"].create(
            endpoint, "subnet", {"vpcId": vpc_id, "cidrBlock": "192.168.0.0/24"}
        )
    assert refused.value.response["Error"]["Code"] == "InvalidSubnet.Range"


def test_an_instance_type_the_endpoint_does_not_know_fails_with_its_error(
    endpoint: Endpoint,
) -> None:
    subnet = SANDBOX_KINDS["aws:ec2/subnet:Subnet"].create(
        endpoint, "subnet", {"vpcId": vpc(endpoint), "cidrBlock": "10.0.2.0/24"}
    )
    image = publish_image(REGION, "plain", "amazon")
    with pytest.raises(ClientError) as refused:
        SANDBOX_KINDS["aws:ec2/instance:Instance"].create(
            endpoint,
            "host",
            {"ami": image, "instanceType": "m6i.notatype", "subnetId": subnet.id},
        )
    assert "m6i.notatype" in refused.value.response["Error"]["Message"]
    assert instances(endpoint, "pending", "running") == []


class RefusedIngress:
    """AuthorizeSecurityGroupIngress fails, as AWS fails a rule it refuses."""

    def __init__(self) -> None:
        self.seen = 0

    def _answer(self, model: Any, **_: Any) -> Any:
        if model.name != "AuthorizeSecurityGroupIngress":
            return None
        self.seen += 1
        error = {"Code": "InvalidPermission.Malformed", "Message": "Unsupported IP protocol"}
        return _response(400), {"Error": error}

    def handlers(self) -> list[tuple[str, Any]]:
        return [("before-call.ec2", self._answer)]


def test_a_create_that_fails_midway_leaves_nothing_behind(aws: ApiCallLog) -> None:
    refusal = RefusedIngress()
    with installed(refusal.handlers()):
        endpoint = Endpoint()
        vpc_id = vpc(endpoint)
        rule = {"protocol": "tcp", "fromPort": 22.0, "toPort": 22.0, "cidrBlocks": ["0.0.0.0/0"]}
        with pytest.raises(ClientError, match=r"InvalidPermission\.Malformed"):
            SANDBOX_KINDS["aws:ec2/securityGroup:SecurityGroup"].create(
                endpoint,
                "host-sg",
                {"vpcId": vpc_id, "description": "ssh", "ingress": [rule], "tags": {"a": "b"}},
            )
        groups = endpoint.client("ec2").describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
        )["SecurityGroups"]
    assert refusal.seen == 1
    assert [g["GroupName"] for g in groups] == ["default"]


def test_a_security_group_has_exactly_the_rules_declared(endpoint: Endpoint) -> None:
    applied = SANDBOX_KINDS["aws:ec2/securityGroup:SecurityGroup"].create(
        endpoint,
        "host-sg",
        {
            "vpcId": vpc(endpoint),
            "description": "mapt host: tcp 22, 3389",
            "ingress": [
                {"protocol": "tcp", "fromPort": p, "toPort": p, "cidrBlocks": ["10.0.0.0/16"]}
                for p in (22.0, 3389.0)
            ],
            "egress": [
                {"protocol": "tcp", "fromPort": 443.0, "toPort": 443.0, "cidrBlocks": ["0.0.0.0/0"]}
            ],
            "tags": {"mapt:project": "ci-42"},
        },
    )
    (group,) = endpoint.client("ec2").describe_security_groups(GroupIds=[applied.id])[
        "SecurityGroups"
    ]
    assert group["GroupName"] == applied.outputs["name"]
    assert group["GroupName"].startswith("host-sg-")
    assert sorted(
        (p["FromPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in group["IpPermissions"]
    ) == [(22, ["10.0.0.0/16"]), (3389, ["10.0.0.0/16"])]
    # AWS's allow-everything egress is gone: only what was declared is left.
    assert [(p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissionsEgress"]] == [
        ("tcp", 443)
    ]
    assert tags(group) == {"mapt:project": "ci-42"}


def test_a_private_key_is_made_locally_with_the_tls_providers_outputs(
    endpoint: Endpoint, aws: ApiCallLog
) -> None:
    from cryptography.hazmat.primitives import serialization

    before = len(aws.calls)
    applied = SANDBOX_KINDS["tls:index/privateKey:PrivateKey"].create(
        endpoint, "host-ssh-key", {"algorithm": "RSA", "rsaBits": 3072.0}
    )
    outputs = applied.outputs
    key = serialization.load_pem_private_key(outputs["privateKeyPem"].encode(), password=None)
    assert key.key_size == 3072  # type: ignore[union-attr]
    assert outputs["privateKeyPem"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert outputs["privateKeyOpenssh"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert outputs["publicKeyOpenssh"] == public.decode() + "\n"
    assert outputs["publicKeyFingerprintSha256"].startswith("SHA256:")
    assert aws.calls[before:] == []  # nothing of it goes to the endpoint
    # EC2 takes it as a key pair, with the tags the program set.
    pair = SANDBOX_KINDS["aws:ec2/keyPair:KeyPair"].create(
        endpoint, "host-key-pair", {"publicKey": outputs["publicKeyOpenssh"], "tags": {"x": "y"}}
    )
    (described,) = endpoint.client("ec2").describe_key_pairs(KeyNames=[pair.id])["KeyPairs"]
    assert tags(described) == {"x": "y"}
    assert described["KeyPairId"] == pair.outputs["keyPairId"]
    SANDBOX_KINDS["aws:ec2/keyPair:KeyPair"].delete(endpoint, pair.id, pair.outputs)
    assert endpoint.client("ec2").describe_key_pairs()["KeyPairs"] == []
    with pytest.raises(OperationError, match="RSA keys only, not 'ED25519'"):
        SANDBOX_KINDS["tls:index/privateKey:PrivateKey"].create(
            endpoint, "key", {"algorithm": "ED25519"}
        )


def test_a_static_time_is_the_moment_it_is_created() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    applied = SANDBOX_KINDS["time:index/static:Static"].create(Endpoint(), "created-at", {})
    stamp = applied.outputs["rfc3339"]
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= moment <= datetime.now(timezone.utc)
    assert applied.id == stamp and applied.outputs["unix"] == int(moment.timestamp())


def test_get_ami_is_answered_with_the_newest_matching_image(endpoint: Endpoint) -> None:
    old = publish_image(REGION, "RHEL-9.4.0_HVM-old", "309956199498", created=datetime(2025, 1, 1))
    new = publish_image(REGION, "RHEL-9.4.1_HVM-new", "309956199498", created=datetime(2026, 11, 1))
    args = {
        "mostRecent": True,
        "owners": ["309956199498"],
        "filters": [{"name": "name", "values": ["RHEL-9.4.*_HVM-*"]}],
    }
    answer = SANDBOX_INVOKES[GET_AMI](endpoint, args)
    assert answer["id"] == new != old
    assert answer["rootDeviceName"] == "/dev/sda1"
    with pytest.raises(OperationError, match="no image in eu-west-1 owned by 309956199498"):
        SANDBOX_INVOKES[GET_AMI](
            endpoint, {**args, "filters": [{"name": "name", "values": ["RHEL-8*"]}]}
        )
