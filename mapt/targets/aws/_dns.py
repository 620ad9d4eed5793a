"""A host's stable name: a Route53 A record ``<project>.<zone>`` in a public hosted zone.

The zone is given by name (``--dns-zone ci.example.com``) and found with
``ListHostedZonesByName`` before anything is created (``resolve_hosted_zone``); the
record is a resource of the host's stack (``host_record``), so it is made with the
host, changed by the host's own ``up`` when the address changes (the provider
UPSERTs it) and deleted with the host.

A spot host without a load balancer has no address of its own: its record points at
the public address of the instance its Auto Scaling group runs now
(``instance_public_address``), which a create (and every re-run of it) reads after the
launch check and hands to the program as a ``LaunchedInstance``.

Nothing here imports ``pulumi`` at module level; ``host_record`` imports it when a
program runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mapt.core import InputError, OperationError

if TYPE_CHECKING:
    import pulumi

    from mapt.targets.aws._base import Deployment

# Resolvers may keep an answer this long: after a spot replacement, clients reach the
# new machine at most a minute after the record is repointed. Lower buys little (many
# resolvers floor TTLs at 30-60 s) and costs more queries.
RECORD_TTL_SECONDS = 60
RECORD_TYPE = "A"
RECORD_RESOURCE = "host-dns"
RECORD_RESOURCE_TYPE = "aws:route53/record:Record"
# One DNS label: letters, digits and hyphens, not starting or ending with a hyphen.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_MAX_NAME_LENGTH = 253


@dataclass(frozen=True)
class HostedZone:
    """A public Route53 hosted zone: its name (no trailing dot) and id (no ``/hostedzone/``)."""

    name: str
    id: str


@dataclass(frozen=True)
class LaunchedInstance:
    """The instance a spot host's group runs now, and its public address."""

    instance_id: str
    public_ip: str


def check_zone_name(text: str, *, flag: str = "--dns-zone") -> str:
    """``text`` as a hosted zone's name: lower case, no trailing dot; ``InputError`` if it
    is no domain name (at least two labels of letters, digits and hyphens)."""
    name = text.strip().rstrip(".").lower()
    labels = name.split(".")
    if (
        len(labels) < 2
        or len(name) > _MAX_NAME_LENGTH
        or not all(_LABEL.fullmatch(label) for label in labels)
    ):
        raise InputError(
            f"{flag} {text!r} is not a domain name like ci.example.com (labels of letters, "
            "digits and hyphens, separated by dots)"
        )
    return name


def record_name(project: str, zone: str) -> str:
    """The host's name: ``<project>.<zone>``, lower case (Route53 keeps names so)."""
    name = f"{project.lower()}.{zone}"
    if len(name) > _MAX_NAME_LENGTH:
        raise InputError(f"host name {name!r} is longer than DNS allows ({_MAX_NAME_LENGTH})")
    return name


def resolve_hosted_zone(session: Any, name: str, *, flag: str = "--dns-zone") -> HostedZone:
    """The public hosted zone called ``name``; ``InputError`` when the account has none
    (or only a private one), or more than one of that name.

    Route53 is global: no region is involved. AWS's own failures (no permission)
    propagate as ``ClientError`` for the caller's usual mapping.
    """
    client = session.client("route53")
    wanted = f"{name}."
    found = client.list_hosted_zones_by_name(DNSName=wanted)["HostedZones"]
    same = [zone for zone in found if zone["Name"].lower() == wanted]
    public = [zone for zone in same if not zone.get("Config", {}).get("PrivateZone", False)]
    if not public:
        private = " (only a private one, which the internet cannot resolve)" if same else ""
        raise InputError(
            f"{flag} {name!r}: the account has no public Route53 hosted zone of that name{private}",
            hint="Create it (aws route53 create-hosted-zone) or give an existing zone's name.",
        )
    if len(public) > 1:
        ids = ", ".join(_zone_id(zone["Id"]) for zone in public)
        raise InputError(f"{flag} {name!r} names {len(public)} public hosted zones ({ids})")
    return HostedZone(name=name, id=_zone_id(public[0]["Id"]))


def _zone_id(text: str) -> str:
    return text.rsplit("/", 1)[-1]


def instance_public_address(session: Any, region: str, instance_id: str) -> LaunchedInstance:
    """The public address of ``instance_id``; ``OperationError`` when it has none."""
    ec2 = session.client("ec2", region_name=region)
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    address = instances[0].get("PublicIpAddress") if instances else None
    if not address:
        raise OperationError(
            f"instance {instance_id} in {region} has no public address for the host's name"
        )
    return LaunchedInstance(instance_id, str(address))


def host_record(dep: Deployment, zone: HostedZone, name: str, address: pulumi.Input[str]) -> None:
    """Declare the host's A record (runs inside the program).

    A record of that name the stack does not own is not taken over: the create fails
    on it (Route53's CREATE), rather than repoint a name someone else uses.
    """
    import pulumi_aws as aws

    aws.route53.Record(
        RECORD_RESOURCE,
        zone_id=zone.id,
        name=name,
        type=RECORD_TYPE,
        ttl=RECORD_TTL_SECONDS,
        records=[address],
        opts=dep.opts(),
    )
