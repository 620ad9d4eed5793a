"""Sweep: find what mapt left on AWS and remove it, in the order AWS accepts.

Machines outlive their pipelines: a cancelled job skips ``destroy``, state gets lost,
an expired host powers off but its network stays. Every taggable resource mapt
creates carries ``mapt:project``, ``mapt:created-at`` and, with an expiry,
``mapt:expires-at`` (``_tags``); the sweep works from those tags alone.

Three steps, with the decision kept apart from the I/O:

1. ``find_mapt_resources`` lists the resources tagged ``mapt:project`` in each region
   (read-only, regions and resource kinds queried in parallel);
2. ``plan_sweep`` (pure) selects what to remove and orders it for deletion;
3. ``execute_sweep`` deletes it, waiting where AWS needs a resource gone before the
   next can go, and reports every resource, deleted or failed; one failure does not
   stop the rest.

Throttling is retried by botocore's ``standard`` retry mode. AWS's own delays (a
load balancer's network interfaces outlive it by a while; an interface endpoint is
deleted in the background) are retried on ``DependencyViolation`` and the like, a
bounded number of times (``SweepTiming``). Imports boto3 only when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

from mapt.core import (
    OperationError,
    aws_error,
    aws_error_code,
    client_config,
    format_duration,
    get_logger,
)
from mapt.targets.aws._tags import TAG_CREATED_AT, TAG_EXPIRES_AT, TAG_PROJECT, parse_timestamp

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_autoscaling.client import AutoScalingClient
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_elbv2.client import ElasticLoadBalancingv2Client

log = get_logger(__name__)

# Deletion order: whatever uses a resource goes before it. Instances (and the groups
# that would replace them) hold network interfaces in subnets and security groups;
# a load balancer holds its target groups, interfaces and Elastic IP; a NAT gateway
# holds its Elastic IP; an internet gateway cannot be detached while the VPC has
# public addresses mapped; a VPC goes once it is empty. Templates and key pairs
# depend on nothing and go last, so a failure above leaves a group relaunchable.
ResourceKind = Literal[
    "auto-scaling-group",
    "instance",
    "load-balancer",
    "target-group",
    "nat-gateway",
    "elastic-ip",
    "vpc-endpoint",
    "subnet",
    "route-table",
    "internet-gateway",
    "security-group",
    "vpc",
    "launch-template",
    "key-pair",
]
DELETION_ORDER: tuple[ResourceKind, ...] = get_args(ResourceKind)
_RANK = {kind: rank for rank, kind in enumerate(DELETION_ORDER)}

Reason = Literal["orphaned", "expired", "old"]
SweepStatus = Literal["deleted", "gone", "would-delete", "failed"]

# Errors that say a resource is still in use by one being deleted: AWS lets go of it
# a little later, so the deletion is tried again.
_IN_USE = frozenset({"DependencyViolation", "InvalidIPAddress.InUse", "ResourceInUse"})
_LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
# Listing calls in flight at once, across regions and kinds (each is a light describe).
_MAX_WORKERS = 32
_GONE_STATES = frozenset({"deleted", "deleting"})


@dataclass(frozen=True)
class TaggedResource:
    """One AWS resource carrying ``mapt:project``, as a sweep needs to know it.

    ``id`` is what its delete call takes (an ARN for load balancers and target
    groups, the name for an Auto Scaling group). ``attachments`` are what must be
    undone first: a route table's subnet associations, an internet gateway's VPCs,
    an Elastic IP's association.
    """

    kind: ResourceKind
    region: str
    id: str
    tags: Mapping[str, str]
    name: str = ""
    attachments: tuple[str, ...] = ()

    @property
    def project(self) -> str | None:
        return self.tags.get(TAG_PROJECT) or None

    @property
    def created_at(self) -> datetime | None:
        return _tag_time(self.tags, TAG_CREATED_AT)

    @property
    def expires_at(self) -> datetime | None:
        return _tag_time(self.tags, TAG_EXPIRES_AT)


@dataclass(frozen=True)
class SweepItem:
    """A resource the sweep removes, and why (one or more reasons)."""

    resource: TaggedResource
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class SweepPlan:
    """What to remove, in deletion order (``DELETION_ORDER``, then region and id)."""

    items: tuple[SweepItem, ...]

    @property
    def projects(self) -> tuple[str, ...]:
        return tuple(sorted({item.resource.project or "" for item in self.items}))


@dataclass(frozen=True)
class SweepAction:
    """What happened to one planned resource. ``gone``: it was already deleted."""

    item: SweepItem
    status: SweepStatus
    error: str | None = None


@dataclass(frozen=True)
class SweepReport:
    """Every planned resource's outcome, in plan order."""

    actions: tuple[SweepAction, ...]
    dry_run: bool

    @property
    def failures(self) -> tuple[SweepAction, ...]:
        return tuple(action for action in self.actions if action.status == "failed")

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class SweepTiming:
    """How long to wait for AWS: waiters (poll delay, attempts) and in-use retries."""

    waiter_delay: int = 5
    waiter_attempts: int = 120
    retry_delay: float = 10.0
    retry_attempts: int = 18
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


# -- plan (pure) --------------------------------------------------------------------------
def plan_sweep(
    resources: Iterable[TaggedResource],
    *,
    now: datetime,
    projects_with_state: AbstractSet[str],
    expired: bool,
    older_than: timedelta | None,
    unreadable_projects: AbstractSet[str] = frozenset(),
) -> SweepPlan:
    """Select what to remove and order it for deletion.

    A resource is selected when its project has no state (``orphaned``, always), when
    ``expired`` and its ``mapt:expires-at`` has passed (``expired``), or when its
    ``mapt:created-at`` is more than ``older_than`` before ``now`` (``old``). A
    resource without ``mapt:project`` is never selected, whatever else it carries;
    a timestamp tag that cannot be read counts as absent. Nor is one of a project in
    ``unreadable_projects``: what its state holds is unknown, so it may be live.
    """
    items = []
    for resource in resources:
        project = resource.project
        if project is None or project in unreadable_projects:
            continue
        reasons: list[Reason] = []
        if project not in projects_with_state:
            reasons.append("orphaned")
        expires_at = resource.expires_at
        if expired and expires_at is not None and expires_at <= now:
            reasons.append("expired")
        created_at = resource.created_at
        if older_than is not None and created_at is not None and now - created_at > older_than:
            reasons.append("old")
        if reasons:
            items.append(SweepItem(resource, tuple(reasons)))
    items.sort(key=lambda i: (_RANK[i.resource.kind], i.resource.region, i.resource.id))
    return SweepPlan(tuple(items))


def describe_reasons(item: SweepItem, *, older_than: timedelta | None = None) -> str:
    """The reasons in words, for people: ``no state``, ``expired 2026-...``, ``older than 6h``."""
    words = []
    for reason in item.reasons:
        if reason == "orphaned":
            words.append("no state")
        elif reason == "expired":
            words.append(f"expired {item.resource.tags.get(TAG_EXPIRES_AT, '')}".strip())
        else:
            limit = f" {format_duration(older_than)}" if older_than is not None else ""
            words.append(f"older than{limit}".strip())
    return ", ".join(words)


# -- find (read-only I/O) -----------------------------------------------------------------
def find_mapt_resources(session: boto3.Session, regions: Sequence[str]) -> list[TaggedResource]:
    """Every resource tagged ``mapt:project`` in ``regions``, of every kind mapt creates.

    Deleted and terminating resources are left out, as are a VPC's main route table
    and default security group (deleted with the VPC). A region that cannot be
    listed raises AWS's error (``aws_error``: exit 5 for bad credentials, else an
    ``OperationError``) naming what, the call and the region: a sweep that silently
    skipped a region would report it clean.
    """
    config = _config(session)
    clients = {region: _Clients.create(session, region, config) for region in regions}
    jobs = [(clients[region], what, finder) for region in regions for what, finder in _FINDERS]
    with ThreadPoolExecutor(max_workers=max(1, min(_MAX_WORKERS, len(jobs)))) as pool:
        found = list(pool.map(lambda job: _find(*job), jobs))
    return [resource for batch in found for resource in batch]


def enabled_regions(session: boto3.Session, home: str) -> list[str]:
    """The regions enabled for this account, by name: where mapt can have created anything.

    DescribeRegions without ``AllRegions`` answers exactly those (opted in, or
    needing no opt-in); ``home`` is the region asked.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = session.client("ec2", region_name=home, config=_config(session)).describe_regions()
    except (ClientError, BotoCoreError) as error:
        raise aws_error(error, region=home) from error
    return sorted(region["RegionName"] for region in answer["Regions"])


Finder = Callable[["_Clients"], list[TaggedResource]]


def _find(clients: _Clients, what: str, finder: Finder) -> list[TaggedResource]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return finder(clients)
    except (ClientError, BotoCoreError) as error:
        raise aws_error(error, region=clients.region, doing=f"listing {what}") from error


_TAG_FILTER: list[Any] = [{"Name": "tag-key", "Values": [TAG_PROJECT]}]


def _find_instances(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    extra: list[Any] = [{"Name": "instance-state-name", "Values": _LIVE_INSTANCE_STATES}]
    paginator = clients.ec2.get_paginator("describe_instances")
    return [
        _resource("instance", region, instance["InstanceId"], instance.get("Tags"))
        for page in paginator.paginate(Filters=[*_TAG_FILTER, *extra])
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]


def _find_groups(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    paginator = clients.autoscaling.get_paginator("describe_auto_scaling_groups")
    return [
        _resource("auto-scaling-group", region, group["AutoScalingGroupName"], group.get("Tags"))
        for page in paginator.paginate(Filters=_TAG_FILTER)
        for group in page["AutoScalingGroups"]
        if group.get("Status") != "Delete in progress"
    ]


def _find_balancers(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    elbv2 = clients.elbv2
    arns: dict[str, tuple[ResourceKind, str]] = {}
    for balancers in elbv2.get_paginator("describe_load_balancers").paginate():
        for balancer in balancers["LoadBalancers"]:
            arns[balancer["LoadBalancerArn"]] = ("load-balancer", balancer["LoadBalancerName"])
    for groups in elbv2.get_paginator("describe_target_groups").paginate():
        for group in groups["TargetGroups"]:
            arns[group["TargetGroupArn"]] = ("target-group", group["TargetGroupName"])
    found = []
    listed = list(arns)
    for start in range(0, len(listed), 20):  # DescribeTags takes 20 ARNs at a time
        answer = elbv2.describe_tags(ResourceArns=listed[start : start + 20])
        for description in answer["TagDescriptions"]:
            tags = _tags(description.get("Tags"))
            if TAG_PROJECT in tags:
                kind, name = arns[description["ResourceArn"]]
                found.append(TaggedResource(kind, region, description["ResourceArn"], tags, name))
    return found


def _find_nat_gateways(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    pages = clients.ec2.get_paginator("describe_nat_gateways").paginate(Filters=_TAG_FILTER)
    return [
        _resource("nat-gateway", region, gateway["NatGatewayId"], gateway.get("Tags"))
        for page in pages
        for gateway in page["NatGateways"]
        if gateway.get("State") not in _GONE_STATES
    ]


def _find_addresses(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    answer = clients.ec2.describe_addresses(Filters=_TAG_FILTER)
    return [
        _resource(
            "elastic-ip",
            region,
            address["AllocationId"],
            address.get("Tags"),
            attachments=(address["AssociationId"],) if address.get("AssociationId") else (),
        )
        for address in answer["Addresses"]
        if address.get("AllocationId")
    ]


def _find_endpoints(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    pages = clients.ec2.get_paginator("describe_vpc_endpoints").paginate(Filters=_TAG_FILTER)
    return [
        _resource("vpc-endpoint", region, endpoint["VpcEndpointId"], endpoint.get("Tags"))
        for page in pages
        for endpoint in page["VpcEndpoints"]
        if str(endpoint.get("State", "")).lower() not in _GONE_STATES
    ]


def _find_subnets(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    pages = clients.ec2.get_paginator("describe_subnets").paginate(Filters=_TAG_FILTER)
    return [
        _resource("subnet", region, subnet["SubnetId"], subnet.get("Tags"))
        for page in pages
        for subnet in page["Subnets"]
    ]


def _find_route_tables(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    found = []
    pages = clients.ec2.get_paginator("describe_route_tables").paginate(Filters=_TAG_FILTER)
    for table in (table for page in pages for table in page["RouteTables"]):
        associations = table.get("Associations", [])
        if any(a.get("Main") for a in associations):
            continue  # the VPC's main table goes with the VPC
        attached = tuple(a["RouteTableAssociationId"] for a in associations if a.get("SubnetId"))
        found.append(
            _resource(
                "route-table",
                region,
                table["RouteTableId"],
                table.get("Tags"),
                attachments=attached,
            )
        )
    return found


def _find_internet_gateways(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    pages = clients.ec2.get_paginator("describe_internet_gateways").paginate(Filters=_TAG_FILTER)
    return [
        _resource(
            "internet-gateway",
            region,
            gateway["InternetGatewayId"],
            gateway.get("Tags"),
            attachments=tuple(a["VpcId"] for a in gateway.get("Attachments", [])),
        )
        for page in pages
        for gateway in page["InternetGateways"]
    ]


def _find_security_groups(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    pages = clients.ec2.get_paginator("describe_security_groups").paginate(Filters=_TAG_FILTER)
    return [
        _resource("security-group", region, group["GroupId"], group.get("Tags"), group["GroupName"])
        for page in pages
        for group in page["SecurityGroups"]
        if group.get("GroupName") != "default"
    ]


def _find_vpcs(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    pages = clients.ec2.get_paginator("describe_vpcs").paginate(Filters=_TAG_FILTER)
    return [
        _resource("vpc", region, vpc["VpcId"], vpc.get("Tags"))
        for page in pages
        for vpc in page["Vpcs"]
    ]


def _find_launch_templates(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    pages = clients.ec2.get_paginator("describe_launch_templates").paginate(Filters=_TAG_FILTER)
    return [
        _resource(
            "launch-template",
            region,
            template["LaunchTemplateId"],
            template.get("Tags"),
            template["LaunchTemplateName"],
        )
        for page in pages
        for template in page["LaunchTemplates"]
    ]


def _find_key_pairs(clients: _Clients) -> list[TaggedResource]:
    region = clients.region
    answer = clients.ec2.describe_key_pairs(Filters=_TAG_FILTER)
    return [
        _resource("key-pair", region, pair["KeyPairId"], pair.get("Tags"), pair["KeyName"])
        for pair in answer["KeyPairs"]
    ]


_FINDERS: tuple[tuple[str, Finder], ...] = (
    ("Auto Scaling groups", _find_groups),
    ("instances", _find_instances),
    ("load balancers and target groups", _find_balancers),
    ("NAT gateways", _find_nat_gateways),
    ("Elastic IPs", _find_addresses),
    ("VPC endpoints", _find_endpoints),
    ("subnets", _find_subnets),
    ("route tables", _find_route_tables),
    ("internet gateways", _find_internet_gateways),
    ("security groups", _find_security_groups),
    ("VPCs", _find_vpcs),
    ("launch templates", _find_launch_templates),
    ("key pairs", _find_key_pairs),
)


# -- execute (I/O) -------------------------------------------------------------------------
def execute_sweep(
    session: boto3.Session,
    plan: SweepPlan,
    *,
    dry_run: bool,
    timing: SweepTiming | None = None,
) -> SweepReport:
    """Delete the plan's resources in its order and report each one's outcome.

    ``dry_run`` calls nothing and reports every resource as ``would-delete``. Regions
    are swept in parallel, each in deletion order. A resource that cannot be deleted
    is reported ``failed`` with AWS's error, and the sweep goes on with the rest
    (whatever depended on it will likely fail too, and say so).
    """
    if dry_run:
        actions = tuple(SweepAction(item, "would-delete") for item in plan.items)
        return SweepReport(actions, dry_run=True)
    settings = timing or SweepTiming()
    regions = sorted({item.resource.region for item in plan.items})
    config = _config(session)
    sweepers = [
        _RegionSweep(
            _Clients.create(session, region, config),
            settings,
            [
                (index, item)
                for index, item in enumerate(plan.items)
                if item.resource.region == region
            ],
        )
        for region in regions
    ]
    with ThreadPoolExecutor(max_workers=max(1, len(regions))) as pool:
        outcomes = list(pool.map(lambda sweeper: sweeper.run(), sweepers))
    merged = {index: action for outcome in outcomes for index, action in outcome.items()}
    return SweepReport(tuple(merged[index] for index in range(len(plan.items))), dry_run=False)


class _RegionSweep:
    """Deletes one region's part of a plan, kind by kind; outcomes by plan index."""

    def __init__(
        self, clients: _Clients, timing: SweepTiming, items: list[tuple[int, SweepItem]]
    ) -> None:
        self.clients = clients
        self.region = clients.region
        self.timing = timing
        self.items = items
        self.outcome: dict[int, SweepAction] = {}

    def run(self) -> dict[int, SweepAction]:
        for kind in DELETION_ORDER:
            batch = [(index, item) for index, item in self.items if item.resource.kind == kind]
            if batch:
                self._delete_kind(kind, batch)
        return self.outcome

    def _delete_kind(self, kind: ResourceKind, batch: list[tuple[int, SweepItem]]) -> None:
        deleted = [(index, item) for index, item in batch if self._delete(index, item)]
        ids = [item.resource.id for _, item in deleted]
        if ids and kind in _GONE_WAITERS:
            self._wait(deleted, kind, ids)

    def _delete(self, index: int, item: SweepItem) -> bool:
        """Delete one resource; record and return whether a deletion was started."""
        from botocore.exceptions import BotoCoreError, ClientError

        resource = item.resource
        try:
            _retrying_in_use(lambda: _DELETERS[resource.kind](self.clients, resource), self.timing)
        except ClientError as error:
            code = _code(error)
            if _not_found(code, error):
                self._record(index, item, "gone")
                return False
            self._record(index, item, "failed", f"{code}: {_message(error)}")
            return False
        except BotoCoreError as error:
            self._record(index, item, "failed", str(error))
            return False
        log.info("deleted %s %s in %s", resource.kind, resource.id, self.region)
        self._record(index, item, "deleted")
        return True

    def _wait(self, items: list[tuple[int, SweepItem]], kind: ResourceKind, ids: list[str]) -> None:
        from botocore.exceptions import WaiterError

        try:
            _wait_gone(self.clients, kind, ids, self.timing)
        except WaiterError as error:
            for index, item in items:
                self._record(index, item, "failed", _unfinished(error, self.timing))

    def _record(
        self, index: int, item: SweepItem, status: SweepStatus, error: str | None = None
    ) -> None:
        self.outcome[index] = SweepAction(item, status, error)


def delete_resource(
    client: Callable[[str], Any], resource: TaggedResource, *, timing: SweepTiming
) -> bool:
    """Delete one resource as the sweep does, and wait until AWS has it gone.

    The one deletion of each kind, shared by the sweep and by whatever else removes
    a resource mapt made (the sandbox engine's destroy, ``_sandbox``). ``client``
    makes the boto3 client of a service in ``resource.region``. Returns False when
    the resource was already gone; AWS's refusal is raised as its ``ClientError``,
    and a deletion AWS did not finish in time as an ``OperationError``.
    """
    from botocore.exceptions import ClientError, WaiterError

    clients = _Clients(
        region=resource.region,
        ec2=client("ec2"),
        autoscaling=client("autoscaling"),
        elbv2=client("elbv2"),
    )
    try:
        _retrying_in_use(lambda: _DELETERS[resource.kind](clients, resource), timing)
    except ClientError as error:
        if _not_found(_code(error), error):
            return False
        raise
    if resource.kind in _GONE_WAITERS:
        try:
            _wait_gone(clients, resource.kind, [resource.id], timing)
        except WaiterError as error:
            raise OperationError(
                f"{resource.kind} {resource.id} in {resource.region}: {_unfinished(error, timing)}"
            ) from error
    return True


def is_not_found(error: Exception) -> bool:
    """Whether a ``ClientError`` says the resource does not exist (deleted meanwhile)."""
    return _not_found(_code(error), error)


def _retrying_in_use(call: Callable[[], object], timing: SweepTiming) -> None:
    """Run ``call``, again while AWS says what it deletes is still in use (for a while)."""
    from botocore.exceptions import ClientError

    for attempt in range(1, timing.retry_attempts + 1):
        try:
            call()
            return
        except ClientError as error:
            if _code(error) not in _IN_USE or attempt == timing.retry_attempts:
                raise
            log.debug("still in use (%s), trying again: %s", _code(error), _message(error))
            timing.sleep(timing.retry_delay)


# Kinds whose deletion AWS finishes in the background, and what must wait for it:
# an instance's network interfaces leave subnets and security groups only once it is
# terminated (a group's instances are among them: its tags propagate, so this also
# waits out the groups' force deletion); a load balancer's interfaces and Elastic IP
# outlive it a while; a NAT gateway holds its Elastic IP until it is deleted.
# (client, waiter, parameter taking the ids)
_GONE_WAITERS: dict[ResourceKind, tuple[str, str, str]] = {
    "instance": ("ec2", "instance_terminated", "InstanceIds"),
    "load-balancer": ("elbv2", "load_balancers_deleted", "LoadBalancerArns"),
    "nat-gateway": ("ec2", "nat_gateway_deleted", "NatGatewayIds"),
}


def _wait_gone(clients: _Clients, kind: ResourceKind, ids: list[str], timing: SweepTiming) -> None:
    service, name, parameter = _GONE_WAITERS[kind]
    waiter = getattr(clients, service).get_waiter(name)
    config = {"Delay": timing.waiter_delay, "MaxAttempts": timing.waiter_attempts}
    waiter.wait(WaiterConfig=config, **{parameter: ids})


def _unfinished(error: Exception, timing: SweepTiming) -> str:
    waited = format_duration(timedelta(seconds=timing.waiter_delay * timing.waiter_attempts))
    return f"deletion started, not finished after {waited}: {error}"


def _delete_group(clients: _Clients, resource: TaggedResource) -> None:
    # Force: terminate its instances with it rather than refuse.
    clients.autoscaling.delete_auto_scaling_group(
        AutoScalingGroupName=resource.id, ForceDelete=True
    )


def _delete_instance(clients: _Clients, resource: TaggedResource) -> None:
    clients.ec2.terminate_instances(InstanceIds=[resource.id])


def _delete_balancer(clients: _Clients, resource: TaggedResource) -> None:
    clients.elbv2.delete_load_balancer(LoadBalancerArn=resource.id)


def _delete_target_group(clients: _Clients, resource: TaggedResource) -> None:
    clients.elbv2.delete_target_group(TargetGroupArn=resource.id)


def _delete_nat_gateway(clients: _Clients, resource: TaggedResource) -> None:
    clients.ec2.delete_nat_gateway(NatGatewayId=resource.id)


def _delete_address(clients: _Clients, resource: TaggedResource) -> None:
    # Its instance or NAT gateway may be gone by now, and the association with it.
    _detach_all(
        resource, lambda association: clients.ec2.disassociate_address(AssociationId=association)
    )
    clients.ec2.release_address(AllocationId=resource.id)


def _detach_all(resource: TaggedResource, detach: Callable[[str], object]) -> None:
    """Undo each of the resource's associations; one already gone is not an error."""
    from botocore.exceptions import ClientError

    for association in resource.attachments:
        try:
            detach(association)
        except ClientError as error:
            if not _not_found(_code(error), error):
                raise


def _delete_endpoint(clients: _Clients, resource: TaggedResource) -> None:
    from botocore.exceptions import ClientError

    answer = clients.ec2.delete_vpc_endpoints(VpcEndpointIds=[resource.id])
    for failed in answer.get("Unsuccessful", []):
        error = failed.get("Error", {})
        raise ClientError(
            {"Error": {"Code": error.get("Code", ""), "Message": error.get("Message", "")}},
            "DeleteVpcEndpoints",
        )


def _delete_subnet(clients: _Clients, resource: TaggedResource) -> None:
    clients.ec2.delete_subnet(SubnetId=resource.id)


def _delete_route_table(clients: _Clients, resource: TaggedResource) -> None:
    # Its subnet may have gone first, and the association with it.
    _detach_all(
        resource,
        lambda association: clients.ec2.disassociate_route_table(AssociationId=association),
    )
    clients.ec2.delete_route_table(RouteTableId=resource.id)


def _delete_internet_gateway(clients: _Clients, resource: TaggedResource) -> None:
    from botocore.exceptions import ClientError

    for vpc in resource.attachments:
        try:
            clients.ec2.detach_internet_gateway(InternetGatewayId=resource.id, VpcId=vpc)
        except ClientError as error:
            if _code(error) != "Gateway.NotAttached":
                raise
    clients.ec2.delete_internet_gateway(InternetGatewayId=resource.id)


def _delete_security_group(clients: _Clients, resource: TaggedResource) -> None:
    clients.ec2.delete_security_group(GroupId=resource.id)


def _delete_vpc(clients: _Clients, resource: TaggedResource) -> None:
    clients.ec2.delete_vpc(VpcId=resource.id)


def _delete_launch_template(clients: _Clients, resource: TaggedResource) -> None:
    clients.ec2.delete_launch_template(LaunchTemplateId=resource.id)


def _delete_key_pair(clients: _Clients, resource: TaggedResource) -> None:
    # By name, which is unique in a region: every EC2 implementation takes it (moto,
    # which the tests run on, does not take the id).
    clients.ec2.delete_key_pair(KeyName=resource.name)


_DELETERS: dict[ResourceKind, Callable[[_Clients, TaggedResource], None]] = {
    "auto-scaling-group": _delete_group,
    "instance": _delete_instance,
    "load-balancer": _delete_balancer,
    "target-group": _delete_target_group,
    "nat-gateway": _delete_nat_gateway,
    "elastic-ip": _delete_address,
    "vpc-endpoint": _delete_endpoint,
    "subnet": _delete_subnet,
    "route-table": _delete_route_table,
    "internet-gateway": _delete_internet_gateway,
    "security-group": _delete_security_group,
    "vpc": _delete_vpc,
    "launch-template": _delete_launch_template,
    "key-pair": _delete_key_pair,
}


# -- plumbing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Clients:
    """One region's clients, created on the calling thread (sessions are not thread-safe)."""

    region: str
    ec2: EC2Client
    autoscaling: AutoScalingClient
    elbv2: ElasticLoadBalancingv2Client

    @classmethod
    def create(cls, session: boto3.Session, region: str, config: Config) -> _Clients:
        """``region``'s clients, with ``config`` (``_config``: made once per sweep)."""
        return cls(
            region=region,
            ec2=session.client("ec2", region_name=region, config=config),
            autoscaling=session.client("autoscaling", region_name=region, config=config),
            elbv2=session.client("elbv2", region_name=region, config=config),
        )


def _config(session: boto3.Session) -> Config:
    """Throttling and transient errors are retried by botocore, with its backoff; the
    environment's proxies read once for every client given this config
    (``client_config``), not by each client."""
    return client_config(  # type: ignore[no-any-return]
        session, retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=20
    )


def _resource(
    kind: ResourceKind,
    region: str,
    resource_id: str,
    tags: Iterable[Mapping[str, Any]] | None,
    name: str | None = None,
    *,
    attachments: tuple[str, ...] = (),
) -> TaggedResource:
    as_dict = _tags(tags)
    return TaggedResource(
        kind=kind,
        region=region,
        id=resource_id,
        tags=as_dict,
        name=name if name is not None else as_dict.get("Name", ""),
        attachments=attachments,
    )


def _tags(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(tag["Key"]): str(tag.get("Value", "")) for tag in tags or ()}


def _tag_time(tags: Mapping[str, str], key: str) -> datetime | None:
    value = tags.get(key)
    return parse_timestamp(value) if value else None


def _code(error: Exception) -> str:
    return aws_error_code(error) or "Unknown"


def _message(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Message", error))


def _not_found(code: str, error: Exception) -> bool:
    """Whether AWS says the resource does not exist (deleted meanwhile)."""
    # moto says NotFoundException where AWS says NotFound (a launch template's).
    if code.endswith(("NotFound", "NotFoundException")):
        return True
    # Auto Scaling reports a missing group as a ValidationError.
    return code == "ValidationError" and "not found" in _message(error).lower()
