"""The sandbox kinds: every resource type the AWS programs declare, made on an endpoint.

One record per Pulumi type token (``SANDBOX_KINDS``) says how the sandbox engine
(``mapt.stacks.SandboxEngine``) creates that resource through boto3 on an
AWS-compatible endpoint (moto on 127.0.0.1) and deletes it again, and one answer per
invoke (``SANDBOX_INVOKES``) how a lookup is answered there. Inputs arrive as Pulumi
gives them (camelCase, numbers as floats); outputs are named as pulumi-aws's schema
names them, so the programs, the checkpoint files and the readers of state see
what a real deployment records.

- A create applies every input the programs set, or refuses: an input the kind does
  not know fails the create naming it (``OperationError``), so a program change is
  never silently left out of the sandbox. What the endpoint refuses comes back as
  its own ``ClientError``, as a real deployment fails. A create that fails after its
  first call deletes what it made, so nothing is left that no state knows.
- A delete of a kind the sweep also removes is the sweep's own deletion
  (``_sweep.delete_resource``): one piece of code per AWS resource kind, retried
  while AWS says it is in use and waited for where AWS deletes in the background.
  A resource already gone is not an error.
- Provider-local resources (``tls.PrivateKey``, ``time.Static``) are computed here,
  as their providers compute them; deleting them deletes nothing.

Imports boto3 only through the clients the engine hands in; ``cryptography`` when a
key is generated.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mapt.core import InputError, OperationError, get_logger
from mapt.stacks import AppliedResource, SandboxAws, SandboxInvoke
from mapt.targets.aws._images import GET_AMI, ami_answer
from mapt.targets.aws._sweep import (
    ResourceKind,
    SweepTiming,
    TaggedResource,
    delete_resource,
    is_not_found,
)

log = get_logger(__name__)

# The endpoint is local: waits and in-use retries are short, but bounded all the same.
SANDBOX_TIMING = SweepTiming(
    waiter_delay=1, waiter_attempts=120, retry_delay=1.0, retry_attempts=30
)

Inputs = Mapping[str, Any]
Create = Callable[[SandboxAws, str, Inputs], AppliedResource]
Delete = Callable[[SandboxAws, str, Mapping[str, Any]], None]
Present = Callable[[SandboxAws, str, Mapping[str, Any]], bool]


@dataclass(frozen=True)
class AwsKind:
    """How one Pulumi resource type is created and deleted on the sandbox endpoint.

    ``inputs`` are the input names ``apply`` applies; a create with any other is
    refused before anything is called.
    """

    type_token: str
    inputs: frozenset[str]
    apply: Create
    remove: Delete
    # Whether a resource still exists (a refresh's read); None: assumed to exist.
    present: Present | None = None

    def create(self, aws: SandboxAws, name: str, inputs: Mapping[str, Any]) -> AppliedResource:
        unknown = sorted(set(inputs) - self.inputs)
        if unknown:
            raise OperationError(
                f"the sandbox cannot apply input(s) {', '.join(unknown)} of "
                f"{self.type_token} {name!r}",
                hint="The sandbox kinds (mapt/targets/aws/_sandbox.py) must learn them.",
            )
        return self.apply(aws, name, _plain(inputs))

    def delete(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> None:
        self.remove(aws, id, outputs)

    def exists(self, aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> bool:
        """Whether the endpoint still has it; a kind without ``present`` cannot tell: yes."""
        return True if self.present is None else self.present(aws, id, outputs)


# -- shared pieces -------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Pulumi's numbers are floats: whole ones become ints, as AWS's APIs take them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _only(value: Mapping[str, Any], allowed: Sequence[str], where: str) -> Mapping[str, Any]:
    """``value`` when it sets nothing but ``allowed``; else refused, naming the rest."""
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise OperationError(f"the sandbox cannot apply {where} {', '.join(unknown)}")
    return value


def _auto_name(name: str) -> str:
    """Pulumi's auto-name: the logical name and seven random hex digits."""
    return f"{name}-{secrets.token_hex(4)[:7]}"


def _tag_list(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"Key": str(key), "Value": str(value)} for key, value in (tags or {}).items()]


def _tag_specs(resource_type: str, tags: Mapping[str, Any] | None) -> list[Any]:
    """EC2's ``TagSpecifications`` for tagging ``resource_type`` as it is created."""
    if not tags:
        return []
    return [{"ResourceType": resource_type, "Tags": _tag_list(tags)}]


def _tags_all(inputs: Inputs) -> dict[str, Any]:
    """``tagsAll``, as the provider reports the tags (no default tags here)."""
    return {"tagsAll": dict(inputs.get("tags") or {})}


def _ec2_arn(aws: SandboxAws, owner: str, path: str) -> str:
    return f"arn:aws:ec2:{aws.region}:{owner}:{path}"


def _arn_field(arn: object, index: int) -> str:
    """One ``:``-separated field of an ARN (4: the account), or empty."""
    fields = str(arn or "").split(":")
    return fields[index] if len(fields) > index else ""


@contextmanager
def _undone_on_failure(undo: Callable[[], None], what: str) -> Iterator[None]:
    """Delete what a create made when one of its later calls fails, then re-raise.

    The leftover would be in no state; if even its deletion fails, it is tagged for
    ``mapt aws sweep``, which the warning says.
    """
    try:
        yield
    except BaseException:
        try:
            undo()
        except Exception as error:  # the original failure is the one to report
            log.warning("could not remove the half-made %s (sweep it): %s", what, error)
        raise


def _swept(
    kind: ResourceKind,
    *,
    name: str | None = None,
    attachments: Callable[[Mapping[str, Any]], tuple[str, ...]] = lambda _outputs: (),
) -> Delete:
    """The delete of a kind the sweep also removes: the sweep's own deletion.

    ``name`` is the output holding the name a deletion takes (a key pair's);
    ``attachments`` what must be undone first, read from the recorded outputs.
    """

    def remove(aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> None:
        resource = TaggedResource(
            kind=kind,
            region=aws.region,
            id=id,
            tags={},
            name=str(outputs.get(name, "")) if name is not None else "",
            attachments=attachments(outputs),
        )
        delete_resource(aws.client, resource, timing=SANDBOX_TIMING)

    return remove


def _tolerating_gone(call: Callable[[], object]) -> None:
    """Run a delete call; a resource AWS says is already gone is not an error."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as error:
        if not is_not_found(error):
            raise


def _nothing_to_delete(_aws: SandboxAws, _id: str, _outputs: Mapping[str, Any]) -> None:
    """Provider-local resources live in state only."""


# -- network -------------------------------------------------------------------------------
def _create_vpc(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock=inputs["cidrBlock"], TagSpecifications=_tag_specs("vpc", inputs.get("tags"))
    )["Vpc"]
    vpc_id = vpc["VpcId"]
    with _undone_on_failure(lambda: _delete_vpc(aws, vpc_id, {}), f"VPC {vpc_id}"):
        for attribute, parameter in (
            ("enableDnsSupport", "EnableDnsSupport"),
            ("enableDnsHostnames", "EnableDnsHostnames"),
        ):
            if attribute in inputs:
                ec2.modify_vpc_attribute(
                    VpcId=vpc_id, **{parameter: {"Value": bool(inputs[attribute])}}
                )
        ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id])
        in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
        main_table = ec2.describe_route_tables(
            Filters=[*in_vpc, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"]
        default_group = ec2.describe_security_groups(
            Filters=[*in_vpc, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"]
        acls = ec2.describe_network_acls(
            Filters=[*in_vpc, {"Name": "default", "Values": ["true"]}]
        )["NetworkAcls"]
    main_id = main_table[0]["RouteTableId"] if main_table else ""
    owner = vpc.get("OwnerId", "")
    return AppliedResource(
        vpc_id,
        {
            **inputs,
            **_tags_all(inputs),
            "arn": _ec2_arn(aws, owner, f"vpc/{vpc_id}"),
            "ownerId": owner,
            "instanceTenancy": vpc.get("InstanceTenancy", "default"),
            "dhcpOptionsId": vpc.get("DhcpOptionsId", ""),
            "mainRouteTableId": main_id,
            "defaultRouteTableId": main_id,
            "defaultSecurityGroupId": default_group[0]["GroupId"] if default_group else "",
            "defaultNetworkAclId": acls[0]["NetworkAclId"] if acls else "",
        },
    )


_delete_vpc = _swept("vpc")


def _create_internet_gateway(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    gateway = ec2.create_internet_gateway(
        TagSpecifications=_tag_specs("internet-gateway", inputs.get("tags"))
    )["InternetGateway"]
    gateway_id = gateway["InternetGatewayId"]
    vpc_id = inputs.get("vpcId")
    if vpc_id:
        with _undone_on_failure(
            lambda: _delete_internet_gateway(aws, gateway_id, {}), f"gateway {gateway_id}"
        ):
            ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id)
    owner = gateway.get("OwnerId", "")
    return AppliedResource(
        gateway_id,
        {
            **inputs,
            **_tags_all(inputs),
            "arn": _ec2_arn(aws, owner, f"internet-gateway/{gateway_id}"),
            "ownerId": owner,
        },
    )


_delete_internet_gateway = _swept(
    "internet-gateway",
    attachments=lambda outputs: (outputs["vpcId"],) if outputs.get("vpcId") else (),
)


def _create_subnet(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    placement = (
        {"AvailabilityZone": inputs["availabilityZone"]} if "availabilityZone" in inputs else {}
    )
    subnet = ec2.create_subnet(
        VpcId=inputs["vpcId"],
        CidrBlock=inputs["cidrBlock"],
        TagSpecifications=_tag_specs("subnet", inputs.get("tags")),
        **placement,
    )["Subnet"]
    subnet_id = subnet["SubnetId"]
    with _undone_on_failure(lambda: _delete_subnet(aws, subnet_id, {}), f"subnet {subnet_id}"):
        if "mapPublicIpOnLaunch" in inputs:
            ec2.modify_subnet_attribute(
                SubnetId=subnet_id,
                MapPublicIpOnLaunch={"Value": bool(inputs["mapPublicIpOnLaunch"])},
            )
        ec2.get_waiter("subnet_available").wait(SubnetIds=[subnet_id])
    owner = subnet.get("OwnerId", "")
    return AppliedResource(
        subnet_id,
        {
            **inputs,
            **_tags_all(inputs),
            "arn": subnet.get("SubnetArn") or _ec2_arn(aws, owner, f"subnet/{subnet_id}"),
            "availabilityZone": subnet["AvailabilityZone"],
            "availabilityZoneId": subnet.get("AvailabilityZoneId", ""),
            "ownerId": owner,
        },
    )


_delete_subnet = _swept("subnet")

# A route's target, by Pulumi's name and CreateRoute's.
_ROUTE_TARGETS = {"gatewayId": "GatewayId", "natGatewayId": "NatGatewayId"}


def _route_target(route: Mapping[str, Any], where: str) -> dict[str, str]:
    targets = {_ROUTE_TARGETS[key]: value for key, value in route.items() if key in _ROUTE_TARGETS}
    if len(targets) != 1:
        raise OperationError(f"the sandbox needs exactly one target of {where}")
    return targets


def _create_route_table(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    table = ec2.create_route_table(
        VpcId=inputs["vpcId"], TagSpecifications=_tag_specs("route-table", inputs.get("tags"))
    )["RouteTable"]
    table_id = table["RouteTableId"]
    routes = [
        _only(route, ("cidrBlock", *_ROUTE_TARGETS), f"a route of {name}")
        for route in inputs.get("routes") or ()
    ]
    with _undone_on_failure(lambda: _delete_route_table(aws, table_id, {}), f"table {table_id}"):
        for route in routes:
            ec2.create_route(
                RouteTableId=table_id,
                DestinationCidrBlock=route["cidrBlock"],
                **_route_target(route, f"a route of {name}"),
            )
    owner = table.get("OwnerId", "")
    return AppliedResource(
        table_id,
        {
            **inputs,
            **_tags_all(inputs),
            "routes": routes,
            "propagatingVgws": [],
            "arn": _ec2_arn(aws, owner, f"route-table/{table_id}"),
            "ownerId": owner,
        },
    )


# Its subnet associations are resources of their own, deleted before it.
_delete_route_table = _swept("route-table")


def _create_route_table_association(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    association = aws.client("ec2").associate_route_table(
        RouteTableId=inputs["routeTableId"], SubnetId=inputs["subnetId"]
    )
    return AppliedResource(association["AssociationId"], dict(inputs))


def _delete_route_table_association(aws: SandboxAws, id: str, _outputs: Mapping[str, Any]) -> None:
    _tolerating_gone(lambda: aws.client("ec2").disassociate_route_table(AssociationId=id))


def _route_id(table_id: str, destination: str) -> str:
    """The provider's id of a route: ``r-<table><crc32 of the destination>``."""
    return f"r-{table_id}{zlib.crc32(destination.encode())}"


def _create_route(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    target = _route_target(inputs, f"route {name!r}")
    aws.client("ec2").create_route(
        RouteTableId=inputs["routeTableId"],
        DestinationCidrBlock=inputs["destinationCidrBlock"],
        **target,
    )
    return AppliedResource(
        _route_id(inputs["routeTableId"], inputs["destinationCidrBlock"]),
        {**inputs, "origin": "CreateRoute", "state": "active"},
    )


def _delete_route(aws: SandboxAws, _id: str, outputs: Mapping[str, Any]) -> None:
    _tolerating_gone(
        lambda: aws.client("ec2").delete_route(
            RouteTableId=outputs["routeTableId"],
            DestinationCidrBlock=outputs["destinationCidrBlock"],
        )
    )


def _create_eip(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    address = ec2.allocate_address(
        Domain=inputs.get("domain", "vpc"),
        TagSpecifications=_tag_specs("elastic-ip", inputs.get("tags")),
    )
    allocation_id = address["AllocationId"]
    outputs: dict[str, Any] = {
        **inputs,
        **_tags_all(inputs),
        "allocationId": allocation_id,
        "publicIp": address["PublicIp"],
        "domain": address.get("Domain", "vpc"),
        "publicIpv4Pool": address.get("PublicIpv4Pool", "amazon"),
        "networkBorderGroup": address.get("NetworkBorderGroup", aws.region),
    }
    instance = inputs.get("instance")
    if instance:
        with _undone_on_failure(
            lambda: _delete_eip(aws, allocation_id, {}), f"address {allocation_id}"
        ):
            # On AWS, associating an address with an instance that has one takes the
            # first one off it (a replaced Elastic IP); moto keeps both, so do as AWS does.
            held = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [instance]}])
            for address_held in held["Addresses"]:
                if address_held.get("AssociationId"):
                    ec2.disassociate_address(AssociationId=address_held["AssociationId"])
            association = ec2.associate_address(AllocationId=allocation_id, InstanceId=instance)
            described = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]
        outputs["associationId"] = association["AssociationId"]
        outputs["privateIp"] = described.get("PrivateIpAddress", "")
        outputs["networkInterface"] = described.get("NetworkInterfaceId", "")
    return AppliedResource(allocation_id, outputs)


_delete_eip = _swept(
    "elastic-ip",
    attachments=lambda outputs: (outputs["associationId"],) if outputs.get("associationId") else (),
)


def _create_nat_gateway(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    gateway = ec2.create_nat_gateway(
        SubnetId=inputs["subnetId"],
        AllocationId=inputs["allocationId"],
        TagSpecifications=_tag_specs("natgateway", inputs.get("tags")),
    )["NatGateway"]
    gateway_id = gateway["NatGatewayId"]
    with _undone_on_failure(lambda: _delete_nat_gateway(aws, gateway_id, {}), gateway_id):
        ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[gateway_id])
        gateway = ec2.describe_nat_gateways(NatGatewayIds=[gateway_id])["NatGateways"][0]
    address = (gateway.get("NatGatewayAddresses") or [{}])[0]
    return AppliedResource(
        gateway_id,
        {
            **inputs,
            **_tags_all(inputs),
            "connectivityType": gateway.get("ConnectivityType", "public"),
            "vpcId": gateway.get("VpcId", ""),
            "networkInterfaceId": address.get("NetworkInterfaceId", ""),
            "privateIp": address.get("PrivateIp", ""),
            "publicIp": address.get("PublicIp", ""),
            "associationId": address.get("AssociationId", ""),
        },
    )


_delete_nat_gateway = _swept("nat-gateway")

# A security group rule's fields, by Pulumi's name.
_RULE_FIELDS = ("protocol", "fromPort", "toPort", "cidrBlocks", "description")
_ALL_TRAFFIC = "0.0.0.0/0"


def _permission(rule: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A rule as ``IpPermissions`` take it (protocol ``-1`` has no ports)."""
    _only(rule, _RULE_FIELDS, where)
    protocol = str(rule["protocol"])
    ranges = [
        {
            "CidrIp": cidr,
            **({"Description": rule["description"]} if rule.get("description") else {}),
        }
        for cidr in rule.get("cidrBlocks") or ()
    ]
    permission: dict[str, Any] = {"IpProtocol": protocol, "IpRanges": ranges}
    if protocol != "-1":
        permission["FromPort"] = rule["fromPort"]
        permission["ToPort"] = rule["toPort"]
    return permission


def _rule_state(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A rule as the provider records it: every field, the unset ones empty."""
    return {
        "description": "",
        "ipv6CidrBlocks": [],
        "prefixListIds": [],
        "securityGroups": [],
        "self": False,
        "cidrBlocks": [],
        **rule,
    }


def _create_security_group(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    group_name = inputs.get("name") or _auto_name(name)
    ingress = [
        _permission(rule, f"an ingress rule of {name}") for rule in inputs.get("ingress") or ()
    ]
    egress = [_permission(rule, f"an egress rule of {name}") for rule in inputs.get("egress") or ()]
    group_id = ec2.create_security_group(
        GroupName=group_name,
        Description=inputs.get("description", "Managed by Pulumi"),
        VpcId=inputs["vpcId"],
        TagSpecifications=_tag_specs("security-group", inputs.get("tags")),
    )["GroupId"]
    with _undone_on_failure(
        lambda: _delete_security_group(aws, group_id, {}), f"security group {group_id}"
    ):
        # AWS opens egress to everything in a new group; the provider removes that rule
        # and applies exactly the egress declared.
        ec2.revoke_security_group_egress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": _ALL_TRAFFIC}]}],
        )
        if ingress:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=ingress)
        if egress:
            ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=egress)
        owner = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["OwnerId"]
    return AppliedResource(
        group_id,
        {
            **inputs,
            **_tags_all(inputs),
            "name": group_name,
            "ingress": [_rule_state(rule) for rule in inputs.get("ingress") or ()],
            "egress": [_rule_state(rule) for rule in inputs.get("egress") or ()],
            "revokeRulesOnDelete": False,
            "arn": _ec2_arn(aws, owner, f"security-group/{group_id}"),
            "ownerId": owner,
        },
    )


_delete_security_group = _swept("security-group")


def _create_vpc_endpoint(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    optional = {
        parameter: inputs[attribute]
        for attribute, parameter in (
            ("routeTableIds", "RouteTableIds"),
            ("subnetIds", "SubnetIds"),
            ("securityGroupIds", "SecurityGroupIds"),
            ("privateDnsEnabled", "PrivateDnsEnabled"),
        )
        if attribute in inputs
    }
    endpoint = ec2.create_vpc_endpoint(
        VpcId=inputs["vpcId"],
        ServiceName=inputs["serviceName"],
        VpcEndpointType=inputs.get("vpcEndpointType", "Gateway"),
        TagSpecifications=_tag_specs("vpc-endpoint", inputs.get("tags")),
        **optional,
    )["VpcEndpoint"]
    endpoint_id = endpoint["VpcEndpointId"]
    owner = endpoint.get("OwnerId", "")
    return AppliedResource(
        endpoint_id,
        {
            **inputs,
            **_tags_all(inputs),
            "arn": _ec2_arn(aws, owner, f"vpc-endpoint/{endpoint_id}"),
            "ownerId": owner,
            "state": str(endpoint.get("State", "")).lower(),
            "networkInterfaceIds": endpoint.get("NetworkInterfaceIds", []),
            "dnsEntries": [
                {"dnsName": entry.get("DnsName", ""), "hostedZoneId": entry.get("HostedZoneId", "")}
                for entry in endpoint.get("DnsEntries", [])
            ],
            "policy": endpoint.get("PolicyDocument", ""),
            "requesterManaged": bool(endpoint.get("RequesterManaged", False)),
        },
    )


_delete_vpc_endpoint = _swept("vpc-endpoint")


# -- keys ----------------------------------------------------------------------------------
def _create_key_pair(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    key_name = inputs.get("keyName") or _auto_name(name)
    pair = aws.client("ec2").import_key_pair(
        KeyName=key_name,
        PublicKeyMaterial=str(inputs["publicKey"]).encode(),
        TagSpecifications=_tag_specs("key-pair", inputs.get("tags")),
    )
    return AppliedResource(
        key_name,
        {
            **inputs,
            **_tags_all(inputs),
            "keyName": key_name,
            "keyPairId": pair.get("KeyPairId", ""),
            "fingerprint": pair.get("KeyFingerprint", ""),
            "keyType": str(inputs["publicKey"]).split(" ", 1)[0].removeprefix("ssh-"),
        },
    )


_delete_key_pair = _swept("key-pair", name="keyName")


def _create_private_key(_aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    """An RSA key made here, with every output the tls provider gives it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    algorithm = inputs.get("algorithm")
    if algorithm != "RSA":
        raise OperationError(f"the sandbox makes RSA keys only, not {algorithm!r} ({name})")
    key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
    public = key.public_key()
    pem = serialization.Encoding.PEM
    public_der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    openssh_public = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    ssh_blob = base64.b64decode(openssh_public.split()[1])
    md5 = hashlib.md5(ssh_blob, usedforsecurity=False).hexdigest()
    sha256 = base64.b64encode(hashlib.sha256(ssh_blob).digest()).decode().rstrip("=")
    no_passphrase = serialization.NoEncryption()
    return AppliedResource(
        # The provider's id: the SHA-1 of the public key.
        hashlib.sha1(public_der, usedforsecurity=False).hexdigest(),
        {
            **inputs,
            "privateKeyPem": key.private_bytes(
                pem, serialization.PrivateFormat.TraditionalOpenSSL, no_passphrase
            ).decode(),
            "privateKeyPemPkcs8": key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, no_passphrase
            ).decode(),
            "privateKeyOpenssh": key.private_bytes(
                pem, serialization.PrivateFormat.OpenSSH, no_passphrase
            ).decode(),
            "publicKeyPem": public.public_bytes(
                pem, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            "publicKeyOpenssh": openssh_public.decode() + "\n",
            "publicKeyFingerprintMd5": ":".join(md5[i : i + 2] for i in range(0, len(md5), 2)),
            "publicKeyFingerprintSha256": f"SHA256:{sha256}",
        },
    )


def _create_static_time(_aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    """``time.Static``: the moment it is created (or the one given), and its parts."""
    given = inputs.get("rfc3339")
    moment = (
        datetime.fromisoformat(str(given).replace("Z", "+00:00"))
        if given
        else datetime.now(timezone.utc).replace(microsecond=0)
    ).astimezone(timezone.utc)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return AppliedResource(
        stamp,
        {
            **inputs,
            "rfc3339": stamp,
            "unix": int(moment.timestamp()),
            "year": moment.year,
            "month": moment.month,
            "day": moment.day,
            "hour": moment.hour,
            "minute": moment.minute,
            "second": moment.second,
        },
    )


# -- compute -------------------------------------------------------------------------------
_METADATA_FIELDS = {"httpEndpoint": "HttpEndpoint", "httpTokens": "HttpTokens"}
_EBS_FIELDS = {
    "volumeSize": "VolumeSize",
    "volumeType": "VolumeType",
    "deleteOnTermination": "DeleteOnTermination",
}


def _renamed(value: Mapping[str, Any], names: Mapping[str, str], where: str) -> dict[str, Any]:
    """``value``'s fields under AWS's names; a field without one is refused."""
    _only(value, tuple(names), where)
    return {names[key]: item for key, item in value.items()}


def _ebs(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    ebs = _renamed(value, _EBS_FIELDS, where)
    if "DeleteOnTermination" in ebs:
        # The launch template takes it as the text "true"/"false".
        ebs["DeleteOnTermination"] = str(ebs["DeleteOnTermination"]).lower() == "true"
    return ebs


def _create_launch_template(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    template_name = inputs.get("name") or _auto_name(name)
    data: dict[str, Any] = {}
    for attribute, parameter in (
        ("imageId", "ImageId"),
        ("keyName", "KeyName"),
        ("vpcSecurityGroupIds", "SecurityGroupIds"),
        ("userData", "UserData"),
        ("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior"),
    ):
        if inputs.get(attribute) is not None:
            data[parameter] = inputs[attribute]
    if "metadataOptions" in inputs:
        data["MetadataOptions"] = _renamed(
            inputs["metadataOptions"], _METADATA_FIELDS, f"metadataOptions of {name}"
        )
    mappings = []
    for mapping in inputs.get("blockDeviceMappings") or ():
        _only(mapping, ("deviceName", "ebs"), f"a block device mapping of {name}")
        mappings.append(
            {
                "DeviceName": mapping["deviceName"],
                "Ebs": _ebs(mapping.get("ebs") or {}, f"the EBS volume of {name}"),
            }
        )
    if mappings:
        data["BlockDeviceMappings"] = mappings
    specs = []
    for spec in inputs.get("tagSpecifications") or ():
        _only(spec, ("resourceType", "tags"), f"a tag specification of {name}")
        specs += _tag_specs(spec["resourceType"], spec.get("tags"))
    if specs:
        data["TagSpecifications"] = specs
    template = aws.client("ec2").create_launch_template(
        LaunchTemplateName=template_name,
        LaunchTemplateData=data,
        TagSpecifications=_tag_specs("launch-template", inputs.get("tags")),
    )["LaunchTemplate"]
    template_id = template["LaunchTemplateId"]
    version = int(template.get("LatestVersionNumber", 1))
    return AppliedResource(
        template_id,
        {
            **inputs,
            **_tags_all(inputs),
            "name": template_name,
            # CreatedBy is the creator's ARN, whose fifth field is the account.
            "arn": _ec2_arn(
                aws, _arn_field(template.get("CreatedBy"), 4), f"launch-template/{template_id}"
            ),
            "latestVersion": version,
            "defaultVersion": int(template.get("DefaultVersionNumber", version)),
        },
    )


_delete_launch_template = _swept("launch-template")


def _image_volume(image: Mapping[str, Any], device: str) -> dict[str, Any]:
    """The snapshot (or else the size) of ``image``'s volume on ``device``, if it says."""
    for mapping in image.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs") or {}
        if mapping.get("DeviceName") == device:
            if ebs.get("SnapshotId"):
                return {"SnapshotId": ebs["SnapshotId"]}
            if ebs.get("VolumeSize"):
                return {"VolumeSize": ebs["VolumeSize"]}
    return {}


def _create_instance(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    ec2 = aws.client("ec2")
    groups = list(inputs.get("vpcSecurityGroupIds") or ())
    request: dict[str, Any] = {
        "ImageId": inputs["ami"],
        "InstanceType": inputs["instanceType"],
        "MinCount": 1,
        "MaxCount": 1,
        "TagSpecifications": _tag_specs("instance", inputs.get("tags")),
    }
    if "associatePublicIpAddress" in inputs:
        # Asking for a public address takes the subnet and groups on the interface.
        request["NetworkInterfaces"] = [
            {
                "DeviceIndex": 0,
                "SubnetId": inputs["subnetId"],
                "Groups": groups,
                "AssociatePublicIpAddress": bool(inputs["associatePublicIpAddress"]),
            }
        ]
    else:
        request["SubnetId"] = inputs["subnetId"]
        request["SecurityGroupIds"] = groups
    for attribute, parameter in (
        ("keyName", "KeyName"),
        ("userData", "UserData"),  # plain text: boto3 encodes it for RunInstances
        ("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior"),
    ):
        if inputs.get(attribute) is not None:
            request[parameter] = inputs[attribute]
    if "metadataOptions" in inputs:
        request["MetadataOptions"] = _renamed(
            inputs["metadataOptions"], _METADATA_FIELDS, f"metadataOptions of {name}"
        )
    root = inputs.get("rootBlockDevice")
    if root:
        volume = dict(root)
        root_tags = volume.pop("tags", None)
        image = ec2.describe_images(ImageIds=[inputs["ami"]])["Images"][0]
        device = image.get("RootDeviceName", "/dev/sda1")
        ebs = _ebs(volume, f"the root volume of {name}")
        if "VolumeSize" not in ebs:
            # The image's own volume, which AWS takes when none is named (moto does not).
            ebs.update(_image_volume(image, device))
        request["BlockDeviceMappings"] = [{"DeviceName": device, "Ebs": ebs}]
        request["TagSpecifications"] += _tag_specs("volume", root_tags)
    instance_id = ec2.run_instances(**request)["Instances"][0]["InstanceId"]
    with _undone_on_failure(lambda: _delete_instance(aws, instance_id, {}), instance_id):
        ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id])
        reservation = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
    instance = reservation["Instances"][0]
    owner = reservation.get("OwnerId", "")
    return AppliedResource(
        instance_id,
        {
            **inputs,
            **_tags_all(inputs),
            "arn": _ec2_arn(aws, owner, f"instance/{instance_id}"),
            "availabilityZone": instance["Placement"]["AvailabilityZone"],
            "instanceState": instance["State"]["Name"],
            "privateIp": instance.get("PrivateIpAddress", ""),
            "privateDns": instance.get("PrivateDnsName", ""),
            "publicIp": instance.get("PublicIpAddress", ""),
            "publicDns": instance.get("PublicDnsName", ""),
            "primaryNetworkInterfaceId": next(
                (
                    interface["NetworkInterfaceId"]
                    for interface in instance.get("NetworkInterfaces", [])
                    if interface.get("Attachment", {}).get("DeviceIndex") == 0
                ),
                "",
            ),
            "instanceLifecycle": instance.get("InstanceLifecycle", ""),
            "tenancy": instance.get("Placement", {}).get("Tenancy", "default"),
        },
    )


_delete_instance = _swept("instance")


def _instance_present(aws: SandboxAws, id: str, _outputs: Mapping[str, Any]) -> bool:
    """An instance exists until it is shutting down or terminated (or forgotten)."""
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": "instance-id", "Values": [id]}]
    )["Reservations"]
    states = [i["State"]["Name"] for r in reservations for i in r["Instances"]]
    return any(state not in ("shutting-down", "terminated") for state in states)


# Fields of the mixed instances policy, by Pulumi's name and Auto Scaling's.
_DISTRIBUTION_FIELDS = {
    "onDemandBaseCapacity": "OnDemandBaseCapacity",
    "onDemandPercentageAboveBaseCapacity": "OnDemandPercentageAboveBaseCapacity",
    "spotAllocationStrategy": "SpotAllocationStrategy",
    "spotMaxPrice": "SpotMaxPrice",
}
_TEMPLATE_FIELDS = {"launchTemplateId": "LaunchTemplateId", "version": "Version"}


def _mixed_instances_policy(policy: Mapping[str, Any], where: str) -> dict[str, Any]:
    _only(policy, ("instancesDistribution", "launchTemplate"), where)
    template = _only(policy["launchTemplate"], ("launchTemplateSpecification", "overrides"), where)
    converted: dict[str, Any] = {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": _renamed(
                template["launchTemplateSpecification"], _TEMPLATE_FIELDS, where
            ),
            "Overrides": [
                _renamed(override, {"instanceType": "InstanceType"}, where)
                for override in template.get("overrides") or ()
            ],
        }
    }
    if "instancesDistribution" in policy:
        distribution = {
            key: value
            for key, value in policy["instancesDistribution"].items()
            if value is not None  # an unset max price is AWS's default, the on-demand price
        }
        converted["InstancesDistribution"] = _renamed(distribution, _DISTRIBUTION_FIELDS, where)
    return converted


def _name_first_override(aws: SandboxAws, policy: Mapping[str, Any]) -> None:
    """Give the group's template a version naming the first override's instance type.

    AWS launches one of the overrides and ignores the template's own type; moto
    launches only the template's type and refuses a template without one. A version
    naming the first override changes nothing on AWS and lets moto launch; a
    template that already names a type is left as it is.
    """
    template = policy["LaunchTemplate"]
    overrides = template.get("Overrides") or []
    spec = template["LaunchTemplateSpecification"]
    if not overrides or "LaunchTemplateId" not in spec:
        return
    ec2 = aws.client("ec2")
    version = spec.get("Version", "$Default")
    data = ec2.describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=[version]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    if data.get("InstanceType"):
        return
    ec2.create_launch_template_version(
        LaunchTemplateId=spec["LaunchTemplateId"],
        SourceVersion=version,
        LaunchTemplateData={"InstanceType": overrides[0]["InstanceType"]},
    )


def _create_group(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    autoscaling = aws.client("autoscaling")
    group_name = inputs.get("name") or _auto_name(name)
    request: dict[str, Any] = {
        "AutoScalingGroupName": group_name,
        "MinSize": inputs["minSize"],
        "MaxSize": inputs["maxSize"],
        "VPCZoneIdentifier": ",".join(inputs.get("vpcZoneIdentifiers") or ()),
        "Tags": [
            {
                "ResourceId": group_name,
                "ResourceType": "auto-scaling-group",
                "Key": tag["key"],
                "Value": tag["value"],
                "PropagateAtLaunch": bool(tag.get("propagateAtLaunch", False)),
            }
            for tag in inputs.get("tags") or ()
        ],
    }
    for attribute, parameter in (
        ("desiredCapacity", "DesiredCapacity"),
        ("capacityRebalance", "CapacityRebalance"),
        ("targetGroupArns", "TargetGroupARNs"),
    ):
        if attribute in inputs:
            request[parameter] = inputs[attribute]
    if "mixedInstancesPolicy" in inputs:
        policy = _mixed_instances_policy(
            inputs["mixedInstancesPolicy"], f"the mixed instances policy of {name}"
        )
        _name_first_override(aws, policy)
        request["MixedInstancesPolicy"] = policy
    autoscaling.create_auto_scaling_group(**request)
    with _undone_on_failure(lambda: _delete_group(aws, group_name, {}), f"group {group_name}"):
        if inputs.get("suspendedProcesses"):
            autoscaling.suspend_processes(
                AutoScalingGroupName=group_name, ScalingProcesses=inputs["suspendedProcesses"]
            )
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
            "AutoScalingGroups"
        ][0]
    return AppliedResource(
        group_name,
        {
            **inputs,
            "name": group_name,
            "arn": group.get("AutoScalingGroupARN", ""),
            "availabilityZones": group.get("AvailabilityZones", []),
            "defaultCooldown": group.get("DefaultCooldown", 300),
            "healthCheckType": group.get("HealthCheckType", "EC2"),
            "healthCheckGracePeriod": group.get("HealthCheckGracePeriod", 300),
            "serviceLinkedRoleArn": group.get("ServiceLinkedRoleARN", ""),
        },
    )


_delete_group = _swept("auto-scaling-group")


def _create_schedule(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    autoscaling = aws.client("autoscaling")
    request: dict[str, Any] = {
        "AutoScalingGroupName": inputs["autoscalingGroupName"],
        "ScheduledActionName": inputs["scheduledActionName"],
    }
    for attribute, parameter in (
        ("startTime", "StartTime"),
        ("endTime", "EndTime"),
        ("recurrence", "Recurrence"),
        ("minSize", "MinSize"),
        ("maxSize", "MaxSize"),
        ("desiredCapacity", "DesiredCapacity"),
    ):
        if attribute in inputs:
            request[parameter] = inputs[attribute]
    autoscaling.put_scheduled_update_group_action(**request)
    actions = autoscaling.describe_scheduled_actions(
        AutoScalingGroupName=inputs["autoscalingGroupName"],
        ScheduledActionNames=[inputs["scheduledActionName"]],
    )["ScheduledUpdateGroupActions"]
    arn = actions[0].get("ScheduledActionARN", "") if actions else ""
    return AppliedResource(inputs["scheduledActionName"], {**inputs, "arn": arn})


def _delete_schedule(aws: SandboxAws, id: str, outputs: Mapping[str, Any]) -> None:
    _tolerating_gone(
        lambda: aws.client("autoscaling").delete_scheduled_action(
            AutoScalingGroupName=outputs["autoscalingGroupName"], ScheduledActionName=id
        )
    )


# -- load balancing ------------------------------------------------------------------------
_SUBNET_MAPPING_FIELDS = {
    "subnetId": "SubnetId",
    "allocationId": "AllocationId",
    "privateIpv4Address": "PrivateIPv4Address",
}


def _arn_suffix(arn: str) -> str:
    """What CloudWatch names a balancer or target group by: the ARN after ``:``...``/``."""
    return arn.split(":", 5)[-1].split("/", 1)[-1]


def _create_load_balancer(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    elbv2 = aws.client("elbv2")
    balancer_name = inputs.get("name") or _auto_name(name)
    balancer = elbv2.create_load_balancer(
        Name=balancer_name,
        Type=inputs.get("loadBalancerType", "application"),
        Scheme="internal" if inputs.get("internal") else "internet-facing",
        SubnetMappings=[
            _renamed(mapping, _SUBNET_MAPPING_FIELDS, f"a subnet mapping of {name}")
            for mapping in inputs.get("subnetMappings") or ()
        ],
        Tags=_tag_list(inputs.get("tags")),
    )["LoadBalancers"][0]
    arn = balancer["LoadBalancerArn"]
    with _undone_on_failure(lambda: _delete_load_balancer(aws, arn, {}), arn):
        elbv2.get_waiter("load_balancer_available").wait(
            LoadBalancerArns=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
    return AppliedResource(
        arn,
        {
            **inputs,
            **_tags_all(inputs),
            "name": balancer_name,
            "arn": arn,
            "arnSuffix": _arn_suffix(arn),
            "dnsName": balancer.get("DNSName", ""),
            "zoneId": balancer.get("CanonicalHostedZoneId", ""),
            "vpcId": balancer.get("VpcId", ""),
            "ipAddressType": balancer.get("IpAddressType", "ipv4"),
            "securityGroups": balancer.get("SecurityGroups", []),
            "subnets": [zone["SubnetId"] for zone in balancer.get("AvailabilityZones", [])],
        },
    )


_delete_load_balancer = _swept("load-balancer")

_HEALTH_CHECK_FIELDS = {"protocol": "HealthCheckProtocol", "port": "HealthCheckPort"}


def _create_target_group(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    elbv2 = aws.client("elbv2")
    group_name = inputs.get("name") or _auto_name(name)
    health = _renamed(
        inputs.get("healthCheck") or {}, _HEALTH_CHECK_FIELDS, f"the health check of {name}"
    )
    group = elbv2.create_target_group(
        Name=group_name,
        Protocol=inputs["protocol"],
        Port=inputs["port"],
        VpcId=inputs["vpcId"],
        TargetType=inputs.get("targetType", "instance"),
        Tags=_tag_list(inputs.get("tags")),
        **health,
    )["TargetGroups"][0]
    arn = group["TargetGroupArn"]
    if "deregistrationDelay" in inputs:
        with _undone_on_failure(lambda: _delete_target_group(aws, arn, {}), arn):
            elbv2.modify_target_group_attributes(
                TargetGroupArn=arn,
                Attributes=[
                    {
                        "Key": "deregistration_delay.timeout_seconds",
                        "Value": str(inputs["deregistrationDelay"]),
                    }
                ],
            )
    return AppliedResource(
        arn,
        {
            **inputs,
            **_tags_all(inputs),
            "name": group_name,
            "arn": arn,
            "arnSuffix": _arn_suffix(arn),
            "loadBalancerArns": group.get("LoadBalancerArns", []),
            "healthCheck": {
                "enabled": bool(group.get("HealthCheckEnabled", True)),
                "protocol": group.get("HealthCheckProtocol", ""),
                "port": group.get("HealthCheckPort", ""),
                "interval": group.get("HealthCheckIntervalSeconds", 30),
                "timeout": group.get("HealthCheckTimeoutSeconds", 10),
                "healthyThreshold": group.get("HealthyThresholdCount", 3),
                "unhealthyThreshold": group.get("UnhealthyThresholdCount", 3),
            },
        },
    )


_delete_target_group = _swept("target-group")


def _create_listener(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    actions = [
        _renamed(
            action,
            {"type": "Type", "targetGroupArn": "TargetGroupArn"},
            f"a default action of {name}",
        )
        for action in inputs.get("defaultActions") or ()
    ]
    listener = aws.client("elbv2").create_listener(
        LoadBalancerArn=inputs["loadBalancerArn"],
        Protocol=inputs["protocol"],
        Port=inputs["port"],
        DefaultActions=actions,
        Tags=_tag_list(inputs.get("tags")),
    )["Listeners"][0]
    arn = listener["ListenerArn"]
    return AppliedResource(arn, {**inputs, **_tags_all(inputs), "arn": arn})


def _delete_listener(aws: SandboxAws, id: str, _outputs: Mapping[str, Any]) -> None:
    _tolerating_gone(lambda: aws.client("elbv2").delete_listener(ListenerArn=id))


# -- event intake --------------------------------------------------------------------------
# A queue's inputs, by Pulumi's name and SQS's attribute name.
_QUEUE_ATTRIBUTES = {
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "redrivePolicy": "RedrivePolicy",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
}


def _attribute_text(value: Any) -> str:
    """An SQS attribute's text: booleans as ``true``/``false``, numbers as digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _create_queue(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    sqs = aws.client("sqs")
    queue_name = inputs.get("name") or _auto_name(name)
    attributes = {
        parameter: _attribute_text(inputs[attribute])
        for attribute, parameter in _QUEUE_ATTRIBUTES.items()
        if attribute in inputs
    }
    tags = {str(key): str(value) for key, value in (inputs.get("tags") or {}).items()}
    url = sqs.create_queue(QueueName=queue_name, Attributes=attributes, tags=tags)["QueueUrl"]
    with _undone_on_failure(lambda: _delete_queue(aws, url, {}), f"queue {queue_name}"):
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    return AppliedResource(
        url, {**inputs, **_tags_all(inputs), "name": queue_name, "arn": arn, "url": url}
    )


def _delete_queue(aws: SandboxAws, id: str, _outputs: Mapping[str, Any]) -> None:
    from botocore.exceptions import ClientError

    try:
        aws.client("sqs").delete_queue(QueueUrl=id)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" not in code and code != "QueueDoesNotExist":
            raise


def _queue_present(aws: SandboxAws, id: str, _outputs: Mapping[str, Any]) -> bool:
    from botocore.exceptions import ClientError

    try:
        aws.client("sqs").get_queue_attributes(QueueUrl=id, AttributeNames=["QueueArn"])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" in code or code == "QueueDoesNotExist":
            return False
        raise
    return True


def _create_queue_policy(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    aws.client("sqs").set_queue_attributes(
        QueueUrl=inputs["queueUrl"], Attributes={"Policy": inputs["policy"]}
    )
    return AppliedResource(inputs["queueUrl"], dict(inputs))


def _delete_queue_policy(aws: SandboxAws, id: str, _outputs: Mapping[str, Any]) -> None:
    from botocore.exceptions import ClientError

    try:
        aws.client("sqs").set_queue_attributes(QueueUrl=id, Attributes={"Policy": ""})
    except ClientError as error:  # the queue went first: its policy went with it
        code = error.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" not in code and code != "QueueDoesNotExist":
            raise


def _create_event_rule(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    events = aws.client("events")
    rule_name = inputs.get("name") or _auto_name(name)
    request: dict[str, Any] = {"Name": rule_name, "Tags": _tag_list(inputs.get("tags"))}
    for attribute, parameter in (
        ("eventPattern", "EventPattern"),
        ("description", "Description"),
    ):
        if attribute in inputs:
            request[parameter] = inputs[attribute]
    arn = events.put_rule(**request)["RuleArn"]
    return AppliedResource(
        rule_name,
        {
            **inputs,
            **_tags_all(inputs),
            "name": rule_name,
            "arn": arn,
            "eventBusName": "default",
            "state": "ENABLED",
        },
    )


def _delete_event_rule(aws: SandboxAws, id: str, _outputs: Mapping[str, Any]) -> None:
    # Its targets are resources of their own, removed before it.
    _tolerating_gone(lambda: aws.client("events").delete_rule(Name=id))


def _create_event_target(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    target_id = inputs.get("targetId") or _auto_name(name)
    answer = aws.client("events").put_targets(
        Rule=inputs["rule"], Targets=[{"Id": target_id, "Arn": inputs["arn"]}]
    )
    if answer.get("FailedEntryCount"):
        failed = answer["FailedEntries"][0]
        raise OperationError(
            f"EventBridge refused target {target_id} of rule {inputs['rule']}: "
            f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
        )
    return AppliedResource(
        f"{inputs['rule']}-{target_id}",
        {**inputs, "targetId": target_id, "eventBusName": "default"},
    )


def _delete_event_target(aws: SandboxAws, _id: str, outputs: Mapping[str, Any]) -> None:
    _tolerating_gone(
        lambda: aws.client("events").remove_targets(Rule=outputs["rule"], Ids=[outputs["targetId"]])
    )


# -- Route53 ---------------------------------------------------------------------------------
def _record_set(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The record as Route53's ``ResourceRecordSet`` (simple routing, one TTL)."""
    return {
        "Name": inputs["name"],
        "Type": inputs["type"],
        "TTL": inputs["ttl"],
        "ResourceRecords": [{"Value": str(value)} for value in inputs.get("records") or ()],
    }


def _current_record_set(aws: SandboxAws, outputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record set of that name and type in the zone now; None when it has none."""
    name = str(outputs["name"]).rstrip(".").lower()
    found = aws.client("route53").list_resource_record_sets(
        HostedZoneId=outputs["zoneId"],
        StartRecordName=name,
        StartRecordType=outputs["type"],
        MaxItems="1",
    )["ResourceRecordSets"]
    if (
        found
        and found[0]["Name"].rstrip(".").lower() == name
        and (found[0]["Type"] == outputs["type"])
    ):
        return dict(found[0])
    return None


def _create_record(aws: SandboxAws, name: str, inputs: Inputs) -> AppliedResource:
    """An UPSERT, as the provider's update of ``records`` or ``ttl`` is: the sandbox has
    no in-place update, so a changed record is a new one, made over the old one, whose
    delete then finds its values gone and leaves the name (``_delete_record``)."""
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=inputs["zoneId"],
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": _record_set(inputs)}]},
    )
    record_id = f"{inputs['zoneId']}_{inputs['name']}_{inputs['type']}"
    return AppliedResource(record_id, {**inputs, "fqdn": inputs["name"]})


def _record_values(record_set: Mapping[str, Any]) -> list[str]:
    return sorted(str(item["Value"]) for item in record_set.get("ResourceRecords") or ())


def _delete_record(aws: SandboxAws, _id: str, outputs: Mapping[str, Any]) -> None:
    """Route53's DELETE of the record as recorded; when the name holds other values (a
    newer version of the record, made by a replacement), this version is gone already."""
    current = _current_record_set(aws, outputs)
    recorded = sorted(str(value) for value in outputs.get("records") or ())
    if current is None or _record_values(current) != recorded:
        return
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=outputs["zoneId"],
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": current}]},
    )


def _record_present(aws: SandboxAws, _id: str, outputs: Mapping[str, Any]) -> bool:
    return _current_record_set(aws, outputs) is not None


# -- the table -----------------------------------------------------------------------------
def _kind(
    token: str, inputs: str, create: Create, delete: Delete, present: Present | None = None
) -> AwsKind:
    return AwsKind(token, frozenset(inputs.split()), create, delete, present)


_KINDS = (
    _kind(
        "aws:ec2/vpc:Vpc",
        "cidrBlock enableDnsHostnames enableDnsSupport tags",
        _create_vpc,
        _delete_vpc,
    ),
    _kind(
        "aws:ec2/internetGateway:InternetGateway",
        "vpcId tags",
        _create_internet_gateway,
        _delete_internet_gateway,
    ),
    _kind(
        "aws:ec2/subnet:Subnet",
        "vpcId cidrBlock availabilityZone mapPublicIpOnLaunch tags",
        _create_subnet,
        _delete_subnet,
    ),
    _kind(
        "aws:ec2/routeTable:RouteTable",
        "vpcId routes tags",
        _create_route_table,
        _delete_route_table,
    ),
    _kind(
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "routeTableId subnetId",
        _create_route_table_association,
        _delete_route_table_association,
    ),
    _kind(
        "aws:ec2/route:Route",
        "routeTableId destinationCidrBlock gatewayId natGatewayId",
        _create_route,
        _delete_route,
    ),
    _kind("aws:ec2/eip:Eip", "domain instance tags", _create_eip, _delete_eip),
    _kind(
        "aws:ec2/natGateway:NatGateway",
        "subnetId allocationId tags",
        _create_nat_gateway,
        _delete_nat_gateway,
    ),
    _kind(
        "aws:ec2/securityGroup:SecurityGroup",
        "name vpcId description ingress egress tags",
        _create_security_group,
        _delete_security_group,
    ),
    _kind(
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "vpcId serviceName vpcEndpointType routeTableIds subnetIds securityGroupIds "
        "privateDnsEnabled tags",
        _create_vpc_endpoint,
        _delete_vpc_endpoint,
    ),
    _kind("aws:ec2/keyPair:KeyPair", "keyName publicKey tags", _create_key_pair, _delete_key_pair),
    _kind(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "name imageId keyName vpcSecurityGroupIds userData blockDeviceMappings "
        "metadataOptions updateDefaultVersion instanceInitiatedShutdownBehavior "
        "tagSpecifications tags",
        _create_launch_template,
        _delete_launch_template,
    ),
    _kind(
        "aws:ec2/instance:Instance",
        "ami instanceType subnetId associatePublicIpAddress vpcSecurityGroupIds keyName "
        "userData rootBlockDevice metadataOptions instanceInitiatedShutdownBehavior tags",
        _create_instance,
        _delete_instance,
        _instance_present,
    ),
    _kind(
        "aws:autoscaling/group:Group",
        # forceDelete and waitForCapacityTimeout tell the provider how to delete and
        # wait: the sweep's deletion forces, and the launch is verified after `up`.
        "name minSize maxSize desiredCapacity vpcZoneIdentifiers capacityRebalance "
        "suspendedProcesses forceDelete waitForCapacityTimeout targetGroupArns "
        "mixedInstancesPolicy tags",
        _create_group,
        _delete_group,
    ),
    _kind(
        "aws:autoscaling/schedule:Schedule",
        "autoscalingGroupName scheduledActionName startTime endTime recurrence minSize "
        "maxSize desiredCapacity",
        _create_schedule,
        _delete_schedule,
    ),
    _kind(
        "aws:lb/loadBalancer:LoadBalancer",
        "name loadBalancerType internal subnetMappings tags",
        _create_load_balancer,
        _delete_load_balancer,
    ),
    _kind(
        "aws:lb/targetGroup:TargetGroup",
        "name port protocol targetType vpcId deregistrationDelay healthCheck tags",
        _create_target_group,
        _delete_target_group,
    ),
    _kind(
        "aws:lb/listener:Listener",
        "loadBalancerArn port protocol defaultActions tags",
        _create_listener,
        _delete_listener,
    ),
    _kind(
        "aws:sqs/queue:Queue",
        "name messageRetentionSeconds receiveWaitTimeSeconds visibilityTimeoutSeconds "
        "redrivePolicy sqsManagedSseEnabled tags",
        _create_queue,
        _delete_queue,
        _queue_present,
    ),
    _kind(
        "aws:sqs/queuePolicy:QueuePolicy",
        "queueUrl policy",
        _create_queue_policy,
        _delete_queue_policy,
    ),
    _kind(
        "aws:cloudwatch/eventRule:EventRule",
        "name description eventPattern tags",
        _create_event_rule,
        _delete_event_rule,
    ),
    _kind(
        "aws:cloudwatch/eventTarget:EventTarget",
        "rule arn targetId",
        _create_event_target,
        _delete_event_target,
    ),
    _kind(
        "aws:route53/record:Record",
        "zoneId name type ttl records",
        _create_record,
        _delete_record,
        _record_present,
    ),
    _kind(
        "tls:index/privateKey:PrivateKey",
        "algorithm rsaBits",
        _create_private_key,
        _nothing_to_delete,
    ),
    _kind("time:index/static:Static", "rfc3339 triggers", _create_static_time, _nothing_to_delete),
)

SANDBOX_KINDS: Mapping[str, AwsKind] = {kind.type_token: kind for kind in _KINDS}


def _get_ami(aws: SandboxAws, args: Mapping[str, Any]) -> Mapping[str, Any]:
    return ami_answer(aws.client("ec2"), aws.region, args)


SANDBOX_INVOKES: Mapping[str, SandboxInvoke] = {GET_AMI: _get_ami}


# -- the endpoint --------------------------------------------------------------------------
# The services the kinds call; a run calls EC2 for its allocation too, and S3 for an
# s3:// state backend. SQS and EventBridge: the service's event intake.
SANDBOX_SERVICES = ("ec2", "autoscaling", "elbv2", "route53", "sqs", "events")


def check_sandbox_endpoint(session: Any, services: Sequence[str] = SANDBOX_SERVICES) -> str:
    """The endpoint a sandbox run calls; ``InputError`` unless it is on the loopback.

    botocore decides the endpoint of each service (``AWS_ENDPOINT_URL``,
    ``AWS_ENDPOINT_URL_<SERVICE>``, a profile's ``endpoint_url``...), so each one's is
    asked of a client (creating one calls nothing). Every service must be on
    127.0.0.0/8 or ::1: a sandbox writes no Pulumi state a real deployment could be
    removed with, so it must never reach real AWS. The error names the variable that
    set the endpoint and its value. Returns the endpoint of the first service.
    """
    import os

    region = session.region_name or "us-east-1"
    found = []
    for service in services:
        client = session.client(service, region_name=region)
        url = str(client.meta.endpoint_url)
        if not _on_loopback(url):
            service_id = client.meta.service_model.service_id
            variable = _endpoint_source(service_id, url, os.environ, session.profile_name)
            raise InputError(
                f"--sandbox needs the AWS endpoint on 127.0.0.0/8 or ::1, but {service} "
                f"would call {url} ({variable})",
                hint="Start moto_server on 127.0.0.1 and set "
                "AWS_ENDPOINT_URL=http://127.0.0.1:<port>; see docs/sandbox.md.",
            )
        found.append(url)
    return found[0] if found else ""


def _on_loopback(url: str) -> bool:
    """Whether ``url``'s host is a loopback address (a name is not: it may resolve anywhere)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint_source(service_id: str, url: str, environ: Mapping[str, str], profile: str) -> str:
    """Which setting gave a service the endpoint ``url``, with its value.

    botocore's order: ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL``, then the
    config file's ``endpoint_url``; ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` turns them
    all off, leaving AWS's own endpoint.
    """
    specific = "AWS_ENDPOINT_URL_" + service_id.replace(" ", "_").upper()
    ignore = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
    for name in (specific, "AWS_ENDPOINT_URL"):
        value = environ.get(name)
        if value and value.rstrip("/") == url.rstrip("/"):
            return f"{name}={value}"
        if value:
            return f"{name}={value} is ignored: {ignore}={environ.get(ignore, '')}"
    # AWS's own endpoint: nothing set one, or what was set is ignored.
    aws_domains = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
    if environ.get(ignore, "").lower() == "true" or url.rstrip("/").endswith(aws_domains):
        return "AWS_ENDPOINT_URL is not set"
    config = environ.get("AWS_CONFIG_FILE", "~/.aws/config")
    return f"endpoint_url of profile {profile} in {config}"


def region_of_address(session: Any, address: str, *, first: str) -> str:
    """The region of the endpoint whose pending or running instance has ``address``,
    looked for in ``first`` before the others; ``first`` when none has it.

    An on-demand host is deployed in its allocation's region, which the readiness
    check is not told: a server's hosts each name their own region, and a spot host
    that fell back to on demand runs where its spot offers failed.
    """

    def has_it(region: str) -> bool:
        ec2 = session.client("ec2", region_name=region)
        for field in ("ip-address", "private-ip-address"):
            reservations = ec2.describe_instances(
                Filters=[
                    {"Name": field, "Values": [address]},
                    {"Name": "instance-state-name", "Values": ["pending", "running"]},
                ]
            )["Reservations"]
            if any(r["Instances"] for r in reservations):
                return True
        return False

    if has_it(first):
        return first
    others = session.client("ec2", region_name=first).describe_regions()["Regions"]
    for found in others:
        if found["RegionName"] != first and has_it(found["RegionName"]):
            return str(found["RegionName"])
    return first


def wait_until_running(
    session: Any, region: str, address: str, *, behind_balancer: bool
) -> str | None:
    """The sandbox's readiness of the machine at ``address``: its state in the endpoint.

    The instance with that public or private address must reach ``running`` (EC2's
    waiter); its id is returned. An address no instance has is accepted only when
    ``behind_balancer`` (a spot host, whose group's instance was seen in service) and
    it is one of the endpoint's Elastic IPs or inside one of its subnets: the load
    balancer's. Anything else is an ``OperationError`` naming the address.
    """
    import ipaddress

    ec2 = session.client("ec2", region_name=region)
    for field in ("ip-address", "private-ip-address"):
        filters: list[Any] = [
            {"Name": field, "Values": [address]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
        reservations = ec2.describe_instances(Filters=filters)["Reservations"]
        found = [i["InstanceId"] for r in reservations for i in r["Instances"]]
        if found:
            ec2.get_waiter("instance_running").wait(
                InstanceIds=found[:1], WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
            return str(found[0])
    if behind_balancer:
        ip = ipaddress.ip_address(address)
        addresses = ec2.describe_addresses()["Addresses"]
        if any(found.get("PublicIp") == address for found in addresses):
            return None
        subnets = ec2.describe_subnets()["Subnets"]
        if any(ip in ipaddress.ip_network(subnet["CidrBlock"]) for subnet in subnets):
            return None
    raise OperationError(f"no running instance in {region} of the sandbox has address {address}")
