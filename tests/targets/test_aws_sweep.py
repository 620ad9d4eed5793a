"""Sweep: the pure selection and order, then find/delete against moto in two regions."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapt.core import OperationError, PrerequisiteError
from mapt.targets.aws import (
    DELETION_ORDER,
    SweepItem,
    SweepTiming,
    TaggedResource,
    describe_reasons,
    enabled_regions,
    execute_sweep,
    find_mapt_resources,
    plan_sweep,
)
from tests.harness.spot_market import ApiCallLog, _response, installed

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
SIX_HOURS = timedelta(hours=6)
WEST, EAST = "eu-west-1", "us-east-1"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def tags_for(
    project: str | None, *, age: timedelta = timedelta(hours=1), expires_in: timedelta | None = None
) -> dict[str, str]:
    """The tags the host program writes for ``project`` (none of mapt's for None)."""
    tags = {"team": "qe"}
    if project is not None:
        tags.update(
            {
                "mapt:project": project,
                "mapt:stack": f"host-{project}",
                "mapt:created-at": stamp(NOW - age),
            }
        )
    if expires_in is not None:
        tags["mapt:expires-at"] = stamp(NOW + expires_in)
    return tags


def resource(kind: Any, project: str | None, region: str = WEST, **tag_args: Any) -> TaggedResource:
    return TaggedResource(kind, region, f"{kind}-{project}-{region}", tags_for(project, **tag_args))


# -- plan (pure) ---------------------------------------------------------------------------
def test_a_project_without_state_is_swept_whatever_its_age() -> None:
    plan = plan_sweep(
        [resource("vpc", "lost"), resource("vpc", "alive")],
        now=NOW,
        projects_with_state={"alive"},
        expired=False,
        older_than=None,
    )
    assert [(i.resource.project, i.reasons) for i in plan.items] == [("lost", ("orphaned",))]


def test_expired_and_old_select_projects_that_still_have_state() -> None:
    resources = [
        resource("vpc", "expired", expires_in=-timedelta(minutes=1)),
        resource("vpc", "expires-now", expires_in=timedelta(0)),
        resource("vpc", "later", expires_in=timedelta(minutes=1)),
        resource("vpc", "old", age=SIX_HOURS + timedelta(seconds=1)),
        resource("vpc", "six-hours", age=SIX_HOURS),
        resource("vpc", "both", age=timedelta(days=2), expires_in=-timedelta(days=1)),
    ]
    projects = {r.project for r in resources if r.project}

    def selected(**kwargs: Any) -> dict[str | None, tuple[str, ...]]:
        plan = plan_sweep(resources, now=NOW, projects_with_state=projects, **kwargs)  # type: ignore[arg-type]
        return {i.resource.project: i.reasons for i in plan.items}

    assert selected(expired=False, older_than=None) == {}
    assert selected(expired=True, older_than=None) == {
        "expired": ("expired",),
        "expires-now": ("expired",),
        "both": ("expired",),
    }
    assert selected(expired=False, older_than=SIX_HOURS) == {"old": ("old",), "both": ("old",)}
    assert selected(expired=True, older_than=SIX_HOURS)["both"] == ("expired", "old")


def test_a_project_whose_state_is_unreadable_is_never_selected() -> None:
    """Its state may say it is live: not orphaned, and not swept by age or expiry either."""
    gone = dict(age=timedelta(days=3), expires_in=-timedelta(days=1))
    plan = plan_sweep(
        [resource("vpc", "unreadable", **gone), resource("vpc", "lost", **gone)],
        now=NOW,
        projects_with_state={"unreadable"},
        expired=True,
        older_than=SIX_HOURS,
        unreadable_projects={"unreadable"},
    )
    assert [(i.resource.project, i.reasons) for i in plan.items] == [
        ("lost", ("orphaned", "expired", "old"))
    ]


def test_untagged_resources_are_never_selected() -> None:
    untagged = TaggedResource(
        "instance",
        WEST,
        "i-untagged",
        {
            "mapt:expires-at": stamp(NOW - timedelta(days=9)),
            "mapt:created-at": "2020-01-01T00:00:00Z",
        },
    )
    plan = plan_sweep(
        [untagged], now=NOW, projects_with_state=set(), expired=True, older_than=SIX_HOURS
    )
    assert plan.items == ()


def test_timestamps_that_cannot_be_read_count_as_absent() -> None:
    broken = TaggedResource(
        "vpc",
        WEST,
        "vpc-1",
        {"mapt:project": "p", "mapt:created-at": "yesterday", "mapt:expires-at": "2026-11-01"},
    )
    plan = plan_sweep(
        [broken], now=NOW, projects_with_state={"p"}, expired=True, older_than=timedelta(seconds=1)
    )
    assert plan.items == ()


def test_the_plan_is_in_dependency_order_across_regions() -> None:
    kinds = list(DELETION_ORDER)
    resources = [
        resource(kind, "lost", region) for region in (EAST, WEST) for kind in reversed(kinds)
    ]
    plan = plan_sweep(resources, now=NOW, projects_with_state=set(), expired=False, older_than=None)
    assert [i.resource.kind for i in plan.items] == [k for k in kinds for _ in (EAST, WEST)]
    assert kinds.index("nat-gateway") < kinds.index("elastic-ip") < kinds.index("internet-gateway")
    assert kinds.index("instance") < kinds.index("subnet") < kinds.index("vpc")
    assert (
        kinds.index("load-balancer") < kinds.index("target-group") < kinds.index("security-group")
    )


def test_reasons_in_words() -> None:
    item = SweepItem(
        resource("vpc", "x", expires_in=-timedelta(hours=1)), ("orphaned", "expired", "old")
    )
    assert describe_reasons(item, older_than=SIX_HOURS) == (
        "no state, expired 2026-11-22T11:00:00Z, older than 6h0m0s"
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(DELETION_ORDER),
            st.sampled_from([None, "a", "b", "c"]),
            st.integers(min_value=-48, max_value=48),
            st.one_of(st.none(), st.integers(min_value=-48, max_value=48)),
        ),
        max_size=30,
    ),
    st.sets(st.sampled_from(["a", "b", "c"])),
    st.booleans(),
)
def test_every_selected_resource_has_a_reason_that_holds(
    specs: list[tuple[Any, str | None, int, int | None]], with_state: set[str], expired: bool
) -> None:
    resources = [
        TaggedResource(
            kind,
            WEST,
            f"r{n}",
            tags_for(
                project,
                age=timedelta(hours=age),
                expires_in=None if expiry is None else timedelta(hours=expiry),
            ),
        )
        for n, (kind, project, age, expiry) in enumerate(specs)
    ]
    plan = plan_sweep(
        resources, now=NOW, projects_with_state=with_state, expired=expired, older_than=SIX_HOURS
    )
    ranks = [DELETION_ORDER.index(i.resource.kind) for i in plan.items]
    assert ranks == sorted(ranks)
    chosen = {i.resource.id for i in plan.items}
    for r in resources:
        orphan = r.project is not None and r.project not in with_state
        gone = expired and r.expires_at is not None and r.expires_at <= NOW
        old = r.created_at is not None and NOW - r.created_at > SIX_HOURS
        assert (r.id in chosen) is (r.project is not None and (orphan or gone or old))


# -- find and execute against moto ---------------------------------------------------------
def specs(kind: str, tags: dict[str, str]) -> list[Any]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


@dataclass
class Project:
    """What one project has in a region, by kind, as (kind, id)."""

    region: str
    ids: dict[str, str] = field(default_factory=dict)


@functools.cache
def public_key() -> str:
    """One RSA public key for every key pair (generating one per pair is slow)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    encoded = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return encoded.decode()


class World:
    """Builds mapt-like deployments in moto's regions, and says what is left of them."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.images: dict[str, str] = {}
        self.projects: dict[str, Project] = {}
        self._clients: dict[tuple[str, str], Any] = {}

    def __getitem__(self, name: str) -> Project:
        return self.projects[name]

    def build(self, name: str, region: str, tags: dict[str, str], *, full: bool) -> None:
        self.projects[name] = self.network(region, tags, full=full)

    def client(self, service: str, region: str) -> Any:
        if (service, region) not in self._clients:
            self._clients[service, region] = self.session.client(service, region_name=region)  # type: ignore[call-overload]
        return self._clients[service, region]

    def ec2(self, region: str) -> Any:
        return self.client("ec2", region)

    def image(self, region: str) -> str:
        if region not in self.images:
            answer = self.ec2(region).register_image(
                Name="mapt-test-image", RootDeviceName="/dev/sda1"
            )
            self.images[region] = answer["ImageId"]
        return self.images[region]

    def network(self, region: str, tags: dict[str, str], *, full: bool) -> Project:
        """VPC, subnet, IGW, route table, security group, instance, key pair (+ more if full)."""
        ec2 = self.ec2(region)
        p = Project(region)
        p.ids["vpc"] = ec2.create_vpc(
            CidrBlock="10.0.0.0/16", TagSpecifications=specs("vpc", tags)
        )["Vpc"]["VpcId"]
        p.ids["subnet"] = ec2.create_subnet(
            VpcId=p.ids["vpc"], CidrBlock="10.0.2.0/24", TagSpecifications=specs("subnet", tags)
        )["Subnet"]["SubnetId"]
        p.ids["internet-gateway"] = ec2.create_internet_gateway(
            TagSpecifications=specs("internet-gateway", tags)
        )["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=p.ids["internet-gateway"], VpcId=p.ids["vpc"])
        p.ids["route-table"] = ec2.create_route_table(
            VpcId=p.ids["vpc"], TagSpecifications=specs("route-table", tags)
        )["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=p.ids["route-table"], SubnetId=p.ids["subnet"])
        p.ids["security-group"] = ec2.create_security_group(
            GroupName="host-sg",
            Description="mapt host",
            VpcId=p.ids["vpc"],
            TagSpecifications=specs("security-group", tags),
        )["GroupId"]
        p.ids["key-pair"] = ec2.import_key_pair(
            KeyName=f"host-key-{p.ids['vpc']}",
            PublicKeyMaterial=public_key().encode(),
            TagSpecifications=specs("key-pair", tags),
        )["KeyPairId"]
        p.ids["instance"] = ec2.run_instances(
            ImageId=self.image(region),
            InstanceType="t3.small",
            MinCount=1,
            MaxCount=1,
            SubnetId=p.ids["subnet"],
            SecurityGroupIds=[p.ids["security-group"]],
            KeyName=f"host-key-{p.ids['vpc']}",
            TagSpecifications=specs("instance", tags),
        )["Instances"][0]["InstanceId"]
        if full:
            self._full(p, tags)
        return p

    def _full(self, p: Project, tags: dict[str, str]) -> None:
        """What the rest of mapt's programs add: EIPs, NAT, endpoint, template, group, NLB."""
        ec2 = self.ec2(p.region)
        p.ids["elastic-ip"] = ec2.allocate_address(
            Domain="vpc", TagSpecifications=specs("elastic-ip", tags)
        )["AllocationId"]
        ec2.associate_address(AllocationId=p.ids["elastic-ip"], InstanceId=p.ids["instance"])
        nat_ip = ec2.allocate_address(Domain="vpc", TagSpecifications=specs("elastic-ip", tags))
        p.ids["nat-eip"] = nat_ip["AllocationId"]
        p.ids["nat-gateway"] = ec2.create_nat_gateway(
            SubnetId=p.ids["subnet"],
            AllocationId=p.ids["nat-eip"],
            TagSpecifications=specs("natgateway", tags),
        )["NatGateway"]["NatGatewayId"]
        p.ids["vpc-endpoint"] = ec2.create_vpc_endpoint(
            VpcId=p.ids["vpc"],
            ServiceName=f"com.amazonaws.{p.region}.s3",
            VpcEndpointType="Gateway",
            RouteTableIds=[p.ids["route-table"]],
            TagSpecifications=specs("vpc-endpoint", tags),
        )["VpcEndpoint"]["VpcEndpointId"]
        p.ids["launch-template"] = ec2.create_launch_template(
            LaunchTemplateName=f"host-template-{p.ids['vpc']}",
            LaunchTemplateData={"ImageId": self.image(p.region), "InstanceType": "t3.small"},
            TagSpecifications=specs("launch-template", tags),
        )["LaunchTemplate"]["LaunchTemplateId"]
        elbv2 = self.client("elbv2", p.region)
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        p.ids["load-balancer"] = elbv2.create_load_balancer(
            Name="host-lb", Subnets=[p.ids["subnet"]], Type="network", Tags=tag_list
        )["LoadBalancers"][0]["LoadBalancerArn"]
        p.ids["target-group"] = elbv2.create_target_group(
            Name="host-tg-22",
            Protocol="TCP",
            Port=22,
            VpcId=p.ids["vpc"],
            TargetType="instance",
            Tags=tag_list,
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_listener(
            LoadBalancerArn=p.ids["load-balancer"],
            Protocol="TCP",
            Port=22,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": p.ids["target-group"]}],
        )
        group = f"mapt-host-{tags['mapt:project']}"
        self.client("autoscaling", p.region).create_auto_scaling_group(
            AutoScalingGroupName=group,
            MinSize=1,
            MaxSize=1,
            DesiredCapacity=1,
            VPCZoneIdentifier=p.ids["subnet"],
            LaunchTemplate={"LaunchTemplateId": p.ids["launch-template"], "Version": "$Latest"},
            TargetGroupARNs=[p.ids["target-group"]],
            Tags=[
                {"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": group}
                for k, v in tags.items()
            ],
        )
        p.ids["auto-scaling-group"] = group

    def live_ids(self, *regions: str) -> set[str]:
        """Every id of every kind the sweep handles that still exists (tagged or not).

        A VPC's main route table and default security group are left out: they come and
        go with their VPC.
        """
        ids: set[str] = set()
        for region in regions:
            ids |= self._live_ids(region)
        return ids

    def _live_ids(self, region: str) -> set[str]:
        ec2 = self.ec2(region)
        ids: set[str] = set()
        for r in ec2.describe_instances()["Reservations"]:
            ids |= {i["InstanceId"] for i in r["Instances"] if i["State"]["Name"] != "terminated"}
        ids |= {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
        ids |= {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
        ids |= {
            g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]
        }
        ids |= {
            t["RouteTableId"]
            for t in ec2.describe_route_tables()["RouteTables"]
            if not any(a.get("Main") for a in t.get("Associations", []))
        }
        ids |= {
            g["GroupId"]
            for g in ec2.describe_security_groups()["SecurityGroups"]
            if g["GroupName"] != "default"
        }
        ids |= {k["KeyPairId"] for k in ec2.describe_key_pairs()["KeyPairs"]}
        ids |= {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]}
        ids |= {
            n["NatGatewayId"]
            for n in ec2.describe_nat_gateways()["NatGateways"]
            if n["State"] not in ("deleted", "deleting")
        }
        ids |= {
            e["VpcEndpointId"]
            for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
            if e["State"].lower() not in ("deleted", "deleting")
        }
        ids |= {t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
        elbv2 = self.client("elbv2", region)
        ids |= {b["LoadBalancerArn"] for b in elbv2.describe_load_balancers()["LoadBalancers"]}
        ids |= {g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]}
        autoscaling = self.client("autoscaling", region)
        groups = autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
        ids |= {g["AutoScalingGroupName"] for g in groups}
        return ids


FAST = SweepTiming(waiter_delay=0, waiter_attempts=3, retry_delay=0, retry_attempts=3)
DELETE_CALLS = (
    "Delete",
    "Terminate",
    "Release",
    "Detach",
    "Disassociate",
)


@pytest.fixture
def session(aws: ApiCallLog) -> boto3.Session:
    return boto3.Session(region_name=EAST)


@pytest.fixture
def world(session: boto3.Session) -> World:
    w = World(session)
    w.build("orphan", WEST, tags_for("orphan"), full=True)
    w.build("expired", EAST, tags_for("expired", expires_in=-timedelta(minutes=5)), full=False)
    w.build("old", EAST, tags_for("old", age=timedelta(hours=10)), full=False)
    w.build("live", WEST, tags_for("live", expires_in=timedelta(hours=2)), full=False)
    w.build("untagged-west", WEST, tags_for(None), full=False)
    w.build("untagged-east", EAST, tags_for(None, expires_in=-timedelta(days=1)), full=False)
    return w


def deletions(log: ApiCallLog, region: str) -> list[str]:
    return [
        c.operation
        for c in log.calls
        if c.region == region and c.operation.startswith(DELETE_CALLS)
    ]


def test_find_lists_every_kind_mapt_tags_and_nothing_else(
    session: boto3.Session, world: World
) -> None:
    found = find_mapt_resources(session, [WEST, EAST])
    by_project: dict[str | None, set[tuple[str, str]]] = {}
    for r in found:
        by_project.setdefault(r.project, set()).add((r.kind, r.id))
    assert None not in by_project  # untagged resources are not even listed
    orphan = world["orphan"].ids
    expected = {(kind, orphan[kind]) for kind in DELETION_ORDER if kind in orphan}
    expected.add(("elastic-ip", orphan["nat-eip"]))
    assert expected <= by_project["orphan"]
    # The group's instance carries the group's (propagated) tags: it is found too.
    group_instances = by_project["orphan"] - expected
    assert {kind for kind, _ in group_instances} == {"instance"}
    assert {kind for kind, _ in by_project["old"]} == {
        "vpc",
        "subnet",
        "internet-gateway",
        "route-table",
        "security-group",
        "key-pair",
        "instance",
    }
    assert {r.region for r in found if r.project == "old"} == {EAST}
    table = next(r for r in found if r.kind == "route-table" and r.project == "orphan")
    assert len(table.attachments) == 1  # its subnet association, undone before deletion
    gateway = next(r for r in found if r.kind == "internet-gateway" and r.project == "orphan")
    assert gateway.attachments == (orphan["vpc"],)


def test_sweep_removes_orphaned_expired_and_old_and_leaves_the_rest(
    session: boto3.Session, world: World, aws: ApiCallLog
) -> None:
    before = {region: world.live_ids(region) for region in (WEST, EAST)}
    found = find_mapt_resources(session, [WEST, EAST])
    plan = plan_sweep(
        found,
        now=NOW,
        projects_with_state={"expired", "old", "live"},
        expired=True,
        older_than=SIX_HOURS,
    )
    assert {i.resource.project for i in plan.items} == {"orphan", "expired", "old"}
    aws.calls.clear()
    report = execute_sweep(session, plan, dry_run=False, timing=FAST)

    assert report.ok, report.failures
    assert [a.item for a in report.actions] == list(plan.items)
    assert {a.status for a in report.actions} == {"deleted"}
    swept = {item.resource.id for item in plan.items}
    for region in (WEST, EAST):
        after = world.live_ids(region)
        assert not after & swept
        kept = {"live", "untagged-west"} if region == WEST else {"untagged-east"}
        for name in kept:
            assert set(world[name].ids.values()) <= after, name
    # Nothing but what was planned went away.
    for region in (WEST, EAST):
        assert before[region] - world.live_ids(region) <= swept

    # AWS's order: groups and instances, balancers, NAT, then addresses, subnets,
    # route tables, gateways, security groups, VPCs, templates, keys.
    west = deletions(aws, WEST)
    assert west.index("TerminateInstances") < west.index("DeleteLoadBalancer")
    assert west.index("DeleteLoadBalancer") < west.index("DeleteTargetGroup")
    assert west.index("DeleteNatGateway") < west.index("ReleaseAddress")
    assert west.index("DisassociateRouteTable") < west.index("DeleteRouteTable")
    assert west.index("DetachInternetGateway") < west.index("DeleteInternetGateway")
    assert west.index("DeleteSubnet") < west.index("DeleteSecurityGroup") < west.index("DeleteVpc")
    assert west[-2:] == ["DeleteLaunchTemplate", "DeleteKeyPair"]
    assert deletions(aws, EAST).count("DeleteVpc") == 2


def test_dry_run_deletes_nothing(session: boto3.Session, world: World, aws: ApiCallLog) -> None:
    found = find_mapt_resources(session, [WEST, EAST])
    plan = plan_sweep(found, now=NOW, projects_with_state=set(), expired=True, older_than=None)
    before = {region: world.live_ids(region) for region in (WEST, EAST)}
    aws.calls.clear()
    report = execute_sweep(session, plan, dry_run=True)
    assert report.dry_run and report.ok
    assert {a.status for a in report.actions} == {"would-delete"}
    assert len(report.actions) == len(plan.items) > 20
    assert aws.calls == []  # not even a describe
    assert {region: world.live_ids(region) for region in (WEST, EAST)} == before


def test_one_failure_does_not_stop_the_rest_and_is_reported(
    session: boto3.Session, world: World
) -> None:
    # Someone added an untagged subnet to the orphan's VPC: the VPC cannot go.
    ec2 = session.client("ec2", region_name=WEST)
    stray = ec2.create_subnet(VpcId=world["orphan"].ids["vpc"], CidrBlock="10.0.9.0/24")
    sleeps: list[float] = []
    timing = SweepTiming(
        waiter_delay=0, waiter_attempts=3, retry_delay=7, retry_attempts=3, sleep=sleeps.append
    )
    found = find_mapt_resources(session, [WEST])
    plan = plan_sweep(found, now=NOW, projects_with_state={"live"}, expired=False, older_than=None)
    report = execute_sweep(session, plan, dry_run=False, timing=timing)

    assert not report.ok
    (failure,) = report.failures
    assert (failure.item.resource.kind, failure.item.resource.id) == (
        "vpc",
        world["orphan"].ids["vpc"],
    )
    assert failure.error is not None and failure.error.startswith("DependencyViolation: ")
    assert sleeps == [7, 7]  # tried three times in all: AWS may just be slow to let go
    assert len([a for a in report.actions if a.status == "deleted"]) == len(plan.items) - 1
    remaining = world.live_ids(WEST)
    assert world["orphan"].ids["vpc"] in remaining and stray["Subnet"]["SubnetId"] in remaining
    assert world["orphan"].ids["key-pair"] not in remaining  # deleted after the failure


class LingeringInterface:
    """DeleteSubnet fails with DependencyViolation ``times`` times, as while an ENI lingers."""

    def __init__(self, times: int) -> None:
        self.left = times

    def _answer(self, model: Any, **_: Any) -> Any:
        if model.name != "DeleteSubnet" or self.left == 0:
            return None
        self.left -= 1
        error = {"Code": "DependencyViolation", "Message": "The subnet has dependencies."}
        return _response(400), {"Error": error}

    def handlers(self) -> list[tuple[str, Any]]:
        return [("before-call.ec2", self._answer)]


def test_a_resource_still_in_use_for_a_while_is_deleted_on_a_later_try(aws: ApiCallLog) -> None:
    lingering = LingeringInterface(times=2)
    with installed(lingering.handlers()):
        session = boto3.Session(region_name=EAST)
        world = World(session)
        project = world.network(EAST, tags_for("lost"), full=False)
        found = find_mapt_resources(session, [EAST])
        plan = plan_sweep(found, now=NOW, projects_with_state=set(), expired=False, older_than=None)
        sleeps: list[float] = []
        timing = SweepTiming(waiter_delay=0, retry_delay=3, retry_attempts=5, sleep=sleeps.append)
        report = execute_sweep(session, plan, dry_run=False, timing=timing)
    assert report.ok, report.failures
    assert sleeps == [3, 3]
    assert project.ids["subnet"] not in world.live_ids(EAST)


def test_a_resource_deleted_meanwhile_is_reported_gone(session: boto3.Session) -> None:
    ghost = TaggedResource("instance", EAST, "i-0123456789abcdef0", tags_for("lost"))
    plan = plan_sweep([ghost], now=NOW, projects_with_state=set(), expired=False, older_than=None)
    report = execute_sweep(session, plan, dry_run=False, timing=FAST)
    assert [a.status for a in report.actions] == ["gone"]
    assert report.ok


def test_enabled_regions_are_the_regions_aws_lists_for_the_account(
    session: boto3.Session, aws: ApiCallLog
) -> None:
    regions = enabled_regions(session, WEST)
    assert {EAST, WEST} <= set(regions)
    assert regions == sorted(regions)
    assert [(c.operation, c.region) for c in aws.calls] == [("DescribeRegions", WEST)]


def test_a_region_that_cannot_be_listed_fails_the_find_naming_it(session: boto3.Session) -> None:
    def deny(model: Any, context: dict[str, Any], **_: Any) -> Any:
        if model.name == "DescribeVpcs" and context.get("client_region") == WEST:
            error = {"Code": "UnauthorizedOperation", "Message": "You are not authorized."}
            return _response(403), {"Error": error}
        return None

    with installed([("before-call.ec2", deny)]):
        denied = boto3.Session(region_name=EAST)
        with pytest.raises(OperationError) as failed:
            find_mapt_resources(denied, [EAST, WEST])
    assert failed.value.message == (
        "listing VPCs: AWS DescribeVpcs in eu-west-1 failed: "
        "UnauthorizedOperation: You are not authorized."
    )
    assert failed.value.hint == "Check the permissions of the AWS identity in use."


def test_credentials_that_stopped_working_during_the_find_are_a_missing_prerequisite(
    session: boto3.Session,
) -> None:
    # As everywhere else in mapt (exit 5, with how to renew them), not a failed sweep.
    def expired(model: Any, context: dict[str, Any], **_: Any) -> Any:
        if model.name == "DescribeSubnets":
            error = {"Code": "ExpiredToken", "Message": "The security token has expired."}
            return _response(400), {"Error": error}
        return None

    with installed([("before-call.ec2", expired)]), pytest.raises(
        PrerequisiteError, match=r"listing subnets: AWS DescribeSubnets in"
    ) as failed:
        find_mapt_resources(boto3.Session(region_name=EAST), [EAST])
    assert "AWS_ACCESS_KEY_ID" in (failed.value.hint or "")
