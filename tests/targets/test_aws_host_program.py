"""The AWS host program under Pulumi mocks: what it would create for every kind of host."""

from __future__ import annotations

import base64
import importlib
import json
from dataclasses import replace
from typing import Any

import pytest

from mapt.allocation import AllocationResult
from mapt.core import InputError, RunContext
from mapt.stacks import ProgramRun, RegisteredResource
from mapt.targets.aws import (
    PHASE_AIRGAP,
    PHASE_BOOTSTRAP,
    SECRET_OUTPUTS,
    HostRequest,
    host_group_name,
    host_output_names,
    host_program,
    host_stack_name,
)
from tests.harness.pulumi_mocks import (
    FAKE_CREATED_AT,
    FAKE_EIP,
    FAKE_PRIVATE_IP,
    FAKE_PRIVATE_KEY_PEM,
    FAKE_PUBLIC_KEY,
    PulumiHarness,
)

CTX = RunContext("ci-42", tags={"team": "qe", "pipeline": "nightly"})
SPOT = AllocationResult(
    region="eu-west-1",
    availability_zone="eu-west-1b",
    availability_zone_id="euw1-az3",
    instance_types=("m6i.2xlarge", "m5.2xlarge", "m7i.2xlarge"),
    spot_price=0.1234,
    max_price=0.16042,
    score=9,
)
ON_DEMAND = replace(SPOT, spot_price=None, max_price=None, score=None)

# Pulumi's signature key for a secret value in serialized resource inputs.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
ASG = "aws:autoscaling/group:Group"
LB = "aws:lb/loadBalancer:LoadBalancer"
INSTANCE = "aws:ec2/instance:Instance"
SUBNET = "aws:ec2/subnet:Subnet"
SG = "aws:ec2/securityGroup:SecurityGroup"
GET_AMI = "aws:ec2/getAmi:getAmi"

# Every valid combination of market x network x OS (Windows cannot be air-gapped).
CASES = [
    pytest.param(alloc, os_name, airgap, id=f"{market}-{'airgap' if airgap else 'std'}-{os_name}")
    for market, alloc in (("spot", SPOT), ("ondemand", ON_DEMAND))
    for airgap in (False, True)
    for os_name in ("rhel", "fedora", "windows")
    if not (airgap and os_name == "windows")
]

EXPECTED_IMAGE = {
    "rhel": ("RHEL-9.4*", "309956199498"),
    "fedora": ("Fedora-Cloud-Base-AmazonEC2.x86_64-41-*", "125523088429"),
    "windows": ("Windows_Server-2022-English-Full-Base-*", "amazon"),
}


def run_host(
    allocation: AllocationResult, request: HostRequest, **kwargs: Any
) -> tuple[ProgramRun, PulumiHarness]:
    harness = PulumiHarness()
    run = harness.run(host_program(CTX, allocation, request, **kwargs))
    return run, harness


def of_type(run: ProgramRun, type_token: str) -> list[RegisteredResource]:
    return [r for r in run.resources if r.type == type_token]


def one(run: ProgramRun, type_token: str, name: str | None = None) -> RegisteredResource:
    found = [r for r in of_type(run, type_token) if name is None or r.name == name]
    assert len(found) == 1, f"expected one {type_token} {name or ''}, got {found}"
    return found[0]


def by_id(run: ProgramRun, resource_id: str) -> RegisteredResource:
    # The mocks give each resource the id "<name>-id".
    name = resource_id.removesuffix("-id")
    return next(r for r in run.resources if r.name == name and r.type.startswith("aws:"))


def host_image_invocation(run: ProgramRun) -> dict[str, Any]:
    # The bastion's Amazon Linux lookup is the other getAmi; the host's is not owned by
    # Amazon unless it is Windows.
    lookups = [i.args for i in run.invocations if i.token == GET_AMI]
    hosts = [a for a in lookups if not a["filters"][0]["values"][0].startswith("al2023-")]
    assert len(hosts) == 1, lookups
    return dict(hosts[0])


def secret_input(value: Any) -> Any:
    """The plain value of a resource input that Pulumi marks secret; fails if it is not."""
    assert isinstance(value, dict), f"expected a secret input, got {type(value).__name__}"
    assert value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270", value.keys()
    return value["value"]


def ingress_ports(group: RegisteredResource) -> list[tuple[int, list[str]]]:
    return sorted((rule["fromPort"], rule["cidrBlocks"]) for rule in group.inputs["ingress"])


def taggable(type_token: str) -> bool:
    """Whether the pulumi_aws resource class of ``type_token`` takes tags."""
    package, module_and_class = type_token.split(":", 1)
    if package != "aws":
        return False
    module, class_name = module_and_class.split(":")[0].split("/")[0], type_token.rsplit(":", 1)[1]
    cls = getattr(importlib.import_module(f"pulumi_aws.{module}"), class_name)
    return hasattr(cls, "tags")


@pytest.mark.parametrize(("allocation", "os_name", "airgap"), CASES)
def test_host_program_deploys_what_was_allocated(
    allocation: AllocationResult, os_name: str, airgap: bool
) -> None:
    request = HostRequest(os_name, airgap=airgap)  # type: ignore[arg-type]
    run, _ = run_host(allocation, request)
    is_spot = allocation.spot_price is not None

    # The provider deploys into the allocated region.
    provider = one(run, "pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-west-1"

    # The host's subnet is in the allocated AZ, private when air-gapped.
    subnets = {s.inputs["cidrBlock"]: s for s in of_type(run, SUBNET)}
    expected_cidrs = {"10.0.2.0/24", "10.0.101.0/24"} if airgap else {"10.0.2.0/24"}
    assert set(subnets) == expected_cidrs
    assert {s.inputs["availabilityZone"] for s in subnets.values()} == {"eu-west-1b"}
    host_cidr = "10.0.101.0/24" if airgap else "10.0.2.0/24"
    assert subnets[host_cidr].inputs["mapPublicIpOnLaunch"] is (not airgap)

    # Ports per OS, open to the world, or only inside the VPC when air-gapped.
    source = ["10.0.0.0/16"] if airgap else ["0.0.0.0/0"]
    ports = [22, 3389] if os_name == "windows" else [22]
    assert ingress_ports(one(run, SG, "host-sg")) == [(p, source) for p in ports]

    # The image lookup has the OS's name pattern and publisher.
    lookup = host_image_invocation(run)
    name, owner = EXPECTED_IMAGE[os_name]
    assert lookup["owners"] == [owner]
    assert lookup["filters"] == [
        {"name": "name", "values": [name]},
        {"name": "architecture", "values": ["x86_64"]},
    ]
    assert lookup["mostRecent"] is True

    # Spot: an ASG launching exactly the allocated types behind a load balancer.
    if is_spot:
        group = one(run, ASG)
        policy = group.inputs["mixedInstancesPolicy"]
        overrides = policy["launchTemplate"]["overrides"]
        assert [o["instanceType"] for o in overrides] == list(allocation.instance_types)
        distribution = policy["instancesDistribution"]
        assert distribution["spotMaxPrice"] == "0.16042"
        assert float(distribution["spotMaxPrice"]) == allocation.max_price
        assert distribution["spotAllocationStrategy"] == "price-capacity-optimized"
        assert distribution["onDemandPercentageAboveBaseCapacity"] == 0
        assert distribution["onDemandBaseCapacity"] == 0
        assert (group.inputs["minSize"], group.inputs["maxSize"]) == (1, 1)
        assert group.inputs["desiredCapacity"] == 1
        assert group.inputs["capacityRebalance"] is True
        assert group.inputs["suspendedProcesses"] == ["HealthCheck"]
        # `up` returns once the group exists; verify_spot_launch waits for the instance.
        assert group.inputs["waitForCapacityTimeout"] == "0"
        assert group.inputs["name"] == host_group_name(CTX) == "mapt-host-ci-42"
        assert [by_id(run, s).inputs["cidrBlock"] for s in group.inputs["vpcZoneIdentifiers"]] == [
            host_cidr
        ]
        balancer = one(run, LB)
        assert balancer.inputs["loadBalancerType"] == "network"
        assert balancer.inputs["internal"] is airgap
        listeners = of_type(run, "aws:lb/listener:Listener")
        groups = of_type(run, "aws:lb/targetGroup:TargetGroup")
        assert sorted(x.inputs["port"] for x in listeners) == ports
        assert sorted(x.inputs["port"] for x in groups) == ports
        assert len(group.inputs["targetGroupArns"]) == len(ports)
        template = one(run, "aws:ec2/launchTemplate:LaunchTemplate")
        ebs = template.inputs["blockDeviceMappings"][0]["ebs"]
        assert (ebs["volumeSize"], ebs["volumeType"]) == (200, "gp3")
        assert "instanceType" not in template.inputs  # only the overrides choose types
        assert not [i for i in of_type(run, INSTANCE) if i.name == "host"]
    else:
        assert not of_type(run, ASG)
        assert not of_type(run, LB)
        host = one(run, INSTANCE, "host")
        # The first offered type, not a random one.
        assert host.inputs["instanceType"] == "m6i.2xlarge"
        assert by_id(run, host.inputs["subnetId"]).inputs["cidrBlock"] == host_cidr
        disk = host.inputs["rootBlockDevice"]
        assert (disk["volumeSize"], disk["volumeType"]) == (200, "gp3")

    # Outputs: the connection values, secrets marked secret.
    assert set(run.outputs) == set(host_output_names(request, spot=is_spot))
    assert ("asg_name" in run.outputs) is is_spot
    for name, output in run.outputs.items():
        assert output.secret is (name in SECRET_OUTPUTS), name
    outputs = run.plain_outputs()
    assert outputs["id_rsa"] == FAKE_PRIVATE_KEY_PEM
    assert outputs["username"] == {"rhel": "ec2-user", "fedora": "fedora"}.get(os_name, "ec2-user")
    if airgap:
        assert outputs["host"] == ("10.0.101.10" if is_spot else FAKE_PRIVATE_IP)
        assert outputs["bastion_host"] == FAKE_EIP
        assert outputs["bastion_username"] == "ec2-user"
        bastion = one(run, INSTANCE, "bastion")
        assert by_id(run, bastion.inputs["subnetId"]).inputs["cidrBlock"] == "10.0.2.0/24"
        assert ingress_ports(one(run, SG, "bastion-sg")) == [(22, ["0.0.0.0/0"])]
    else:
        assert outputs["host"] == FAKE_EIP
        assert not [i for i in of_type(run, INSTANCE) if i.name == "bastion"]
    if os_name == "windows":
        # EC2's password arrives after boot (deploy_host records it): not yet.
        assert outputs["awaited_secrets"] == ["windows-password"]
        assert "userpassword" not in outputs
    if is_spot:
        assert outputs["asg_name"] == "mapt-host-ci-42"


@pytest.mark.parametrize(("allocation", "os_name", "airgap"), CASES)
def test_every_taggable_resource_carries_the_context_and_mapt_tags(
    allocation: AllocationResult, os_name: str, airgap: bool
) -> None:
    run, _ = run_host(allocation, HostRequest(os_name, airgap=airgap))  # type: ignore[arg-type]
    expected = {
        "team": "qe",
        "pipeline": "nightly",
        "mapt:project": "ci-42",
        "mapt:stack": "host-ci-42",
        "mapt:created-at": FAKE_CREATED_AT,
    }
    checked = 0
    for resource in run.resources:
        if not taggable(resource.type):
            continue
        checked += 1
        tags = resource.inputs.get("tags")
        assert tags, f"{resource.type} {resource.name} has no tags"
        if resource.type == ASG:
            as_dict = {t["key"]: t["value"] for t in tags}
            assert all(t["propagateAtLaunch"] for t in tags)
        else:
            as_dict = tags
        assert expected.items() <= as_dict.items(), resource.name
    assert checked >= 8
    # created-at comes from a resource kept in state, not from the clock of this run.
    created = one(run, "time:index/static:Static")
    assert "triggers" not in created.inputs


def test_launch_template_tags_the_instances_and_volumes_spot_launches() -> None:
    run, _ = run_host(SPOT, HostRequest("rhel"))
    template = one(run, "aws:ec2/launchTemplate:LaunchTemplate")
    kinds = {spec["resourceType"]: spec["tags"] for spec in template.inputs["tagSpecifications"]}
    assert {"instance", "volume", "spot-instances-request"} <= set(kinds)
    assert all(tags["mapt:project"] == "ci-42" for tags in kinds.values())


def test_stack_name_is_host_dash_project() -> None:
    assert host_stack_name(CTX) == "host-ci-42"


def test_airgap_bootstrap_phase_has_the_nat_and_the_final_phase_does_not() -> None:
    request = HostRequest("rhel", airgap=True)
    bootstrap, _ = run_host(SPOT, request, phase=PHASE_BOOTSTRAP)
    final, _ = run_host(SPOT, request, phase=PHASE_AIRGAP)
    default, _ = run_host(SPOT, request)
    nat = "aws:ec2/natGateway:NatGateway"
    route = "aws:ec2/route:Route"
    gateway = one(bootstrap, nat)
    assert by_id(bootstrap, gateway.inputs["subnetId"]).inputs["cidrBlock"] == "10.0.2.0/24"
    default_route = one(bootstrap, route)
    assert default_route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
    assert by_id(bootstrap, default_route.inputs["routeTableId"]).name == "private-routes"
    for run in (final, default):
        assert not of_type(run, nat)
        assert not of_type(run, route)
        assert not [e for e in of_type(run, "aws:ec2/eip:Eip") if e.name == "nat-eip"]
        # The private route table has no way out.
        assert "routes" not in one(run, "aws:ec2/routeTable:RouteTable", "private-routes").inputs
    # Everything else is the same in both phases: the second phase only removes.
    names = {(r.type, r.name) for r in bootstrap.resources}
    assert {(r.type, r.name) for r in final.resources} == names - {
        (nat, "nat"),
        (route, "private-default-route"),
        ("aws:ec2/eip:Eip", "nat-eip"),
    }


def test_phase_of_another_kind_of_host_is_refused() -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        host_program(CTX, SPOT, HostRequest("rhel"), phase=PHASE_BOOTSTRAP)


def test_service_endpoints_are_created_in_the_allocated_region() -> None:
    run, _ = run_host(ON_DEMAND, HostRequest("rhel", service_endpoints=("s3", "ecr", "ssm")))
    endpoints = {
        e.inputs["serviceName"]: e.inputs for e in of_type(run, "aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    prefix = "com.amazonaws.eu-west-1."
    assert set(endpoints) == {
        prefix + s for s in ("s3", "ecr.api", "ecr.dkr", "ssm", "ssmmessages", "ec2messages")
    }
    assert endpoints[prefix + "s3"]["vpcEndpointType"] == "Gateway"
    assert endpoints[prefix + "ecr.api"]["privateDnsEnabled"] is True
    assert ingress_ports(one(run, SG, "endpoints-sg")) == [(443, ["10.0.0.0/16"])]
    plain, _ = run_host(ON_DEMAND, HostRequest("rhel"))
    assert not of_type(plain, "aws:ec2/vpcEndpoint:VpcEndpoint")


def test_user_data_per_os() -> None:
    rhel, _ = run_host(SPOT, HostRequest("rhel", disk_size=120))
    template = one(rhel, "aws:ec2/launchTemplate:LaunchTemplate")
    assert isinstance(template.inputs["userData"], str)  # nothing secret in it
    text = base64.b64decode(template.inputs["userData"]).decode()
    assert text.startswith("#cloud-config\n")
    config = json.loads(text.split("\n", 1)[1])
    assert config["packages"] == ["podman"]
    assert config["growpart"]["mode"] == "auto"
    assert "rh_subscription" not in config
    assert template.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 120

    windows, _ = run_host(ON_DEMAND, HostRequest("windows", ami_username="tester"))
    script = one(windows, INSTANCE, "host").inputs["userData"]
    assert isinstance(script, str)  # no password in it any more: not a secret
    assert script.startswith("<powershell>")
    assert FAKE_PUBLIC_KEY in script
    assert "$user = 'tester'" in script
    assert "-LocalPort 22" in script
    assert windows.plain_outputs()["username"] == "tester"
    assert not of_type(windows, "random:index/randomPassword:RandomPassword")


def test_custom_windows_image_and_versions_reach_the_lookup() -> None:
    run, _ = run_host(
        SPOT, HostRequest("windows", ami_name="Windows_Server-2022-English-Full-HyperV-RHQE")
    )
    lookup = host_image_invocation(run)
    assert lookup["owners"] == ["self"]
    assert lookup["filters"][0]["values"] == ["Windows_Server-2022-English-Full-HyperV-RHQE"]
    run, _ = run_host(SPOT, HostRequest("rhel", version="10.0", arch="arm64"))
    lookup = host_image_invocation(run)
    assert lookup["filters"] == [
        {"name": "name", "values": ["RHEL-10.0*"]},
        {"name": "architecture", "values": ["arm64"]},
    ]
    run, _ = run_host(SPOT, HostRequest("fedora", version="42", arch="arm64"))
    assert host_image_invocation(run)["filters"][0]["values"] == [
        "Fedora-Cloud-Base-AmazonEC2.aarch64-42-*"
    ]


def test_spot_without_a_max_price_leaves_the_cap_to_aws() -> None:
    run, _ = run_host(replace(SPOT, max_price=None), HostRequest("fedora"))
    distribution = one(run, ASG).inputs["mixedInstancesPolicy"]["instancesDistribution"]
    assert "spotMaxPrice" not in distribution


def test_windows_cannot_be_air_gapped() -> None:
    with pytest.raises(InputError, match="--airgap is not supported for windows"):
        HostRequest("windows", airgap=True)


def test_an_allocation_without_types_is_refused() -> None:
    empty = AllocationResult("eu-west-1", "eu-west-1b", "euw1-az3", (), None, None, None)
    with pytest.raises(InputError, match="no instance type"):
        host_program(CTX, empty, HostRequest("rhel"))
