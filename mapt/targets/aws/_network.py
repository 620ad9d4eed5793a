"""The host's network: a VPC in the allocated AZ, public, or air-gapped behind a bastion.

Standard: VPC 10.0.0.0/16, an internet gateway and one public subnet 10.0.2.0/24 routed
to it; the host lives there with a public address.

Air-gapped: the same public subnet holds a bastion (and, while the host bootstraps, a
NAT gateway); the host lives in the private subnet 10.0.101.0/24, whose only route out
is through that NAT. The second phase of an air-gapped deployment declares no NAT and
no route, so Pulumi deletes them and the host is cut off from the internet.

Imported only while a program runs (it imports ``pulumi_aws``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi_aws as aws

from mapt.targets.aws._base import Deployment

VPC_CIDR = "10.0.0.0/16"
PUBLIC_SUBNET_CIDR = "10.0.2.0/24"
PRIVATE_SUBNET_CIDR = "10.0.101.0/24"
ANYWHERE = "0.0.0.0/0"
HTTPS_PORT = 443

# Interface endpoints per ``--service-endpoints`` name; s3 is a gateway endpoint.
_INTERFACE_ENDPOINTS = {
    "ecr": ("ecr.api", "ecr.dkr"),
    "ssm": ("ssm", "ssmmessages", "ec2messages"),
}


@dataclass(frozen=True)
class Network:
    """The parts of the network the compute resources attach to."""

    vpc: aws.ec2.Vpc
    public_subnet: aws.ec2.Subnet
    host_subnet: aws.ec2.Subnet
    host_security_group: aws.ec2.SecurityGroup
    # The CIDR the host's ports are open to: anywhere, or the VPC when air-gapped.
    ingress_cidr: str


def build_network(
    dep: Deployment,
    *,
    region: str,
    availability_zone: str,
    ports: Sequence[int],
    airgap: bool,
    nat: bool,
    service_endpoints: Sequence[str],
) -> Network:
    """Declare the network; ``nat`` (air-gapped only) keeps the bootstrap NAT gateway."""
    vpc = aws.ec2.Vpc(
        "vpc",
        cidr_block=VPC_CIDR,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags=dep.named_tags("mapt-vpc"),
        opts=dep.opts(),
    )
    igw = aws.ec2.InternetGateway(
        "igw", vpc_id=vpc.id, tags=dep.named_tags("mapt-igw"), opts=dep.opts()
    )
    public_subnet = aws.ec2.Subnet(
        "public-subnet",
        vpc_id=vpc.id,
        cidr_block=PUBLIC_SUBNET_CIDR,
        availability_zone=availability_zone,
        map_public_ip_on_launch=True,
        tags=dep.named_tags("mapt-public"),
        opts=dep.opts(),
    )
    public_routes = aws.ec2.RouteTable(
        "public-routes",
        vpc_id=vpc.id,
        routes=[{"cidr_block": ANYWHERE, "gateway_id": igw.id}],
        tags=dep.named_tags("mapt-public"),
        opts=dep.opts(),
    )
    aws.ec2.RouteTableAssociation(
        "public-routes-association",
        subnet_id=public_subnet.id,
        route_table_id=public_routes.id,
        opts=dep.opts(),
    )
    route_tables: list[aws.ec2.RouteTable] = [public_routes]
    host_subnet = public_subnet
    ingress_cidr = ANYWHERE
    if airgap:
        host_subnet = aws.ec2.Subnet(
            "private-subnet",
            vpc_id=vpc.id,
            cidr_block=PRIVATE_SUBNET_CIDR,
            availability_zone=availability_zone,
            map_public_ip_on_launch=False,
            tags=dep.named_tags("mapt-private"),
            opts=dep.opts(),
        )
        # Routes are separate resources so that the second phase can drop the NAT
        # route while the table (and its association) stay.
        private_routes = aws.ec2.RouteTable(
            "private-routes", vpc_id=vpc.id, tags=dep.named_tags("mapt-private"), opts=dep.opts()
        )
        aws.ec2.RouteTableAssociation(
            "private-routes-association",
            subnet_id=host_subnet.id,
            route_table_id=private_routes.id,
            opts=dep.opts(),
        )
        route_tables.append(private_routes)
        ingress_cidr = VPC_CIDR
        if nat:
            nat_eip = aws.ec2.Eip(
                "nat-eip", domain="vpc", tags=dep.named_tags("mapt-nat"), opts=dep.opts()
            )
            nat_gateway = aws.ec2.NatGateway(
                "nat",
                allocation_id=nat_eip.allocation_id,
                subnet_id=public_subnet.id,
                tags=dep.named_tags("mapt-nat"),
                opts=dep.opts(depends_on=[igw]),
            )
            aws.ec2.Route(
                "private-default-route",
                route_table_id=private_routes.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=nat_gateway.id,
                opts=dep.opts(),
            )
    host_sg = security_group(dep, "host", vpc, ports=ports, cidr=ingress_cidr)
    if service_endpoints:
        _endpoints(dep, region, vpc, host_subnet, route_tables, service_endpoints)
    return Network(vpc, public_subnet, host_subnet, host_sg, ingress_cidr)


def security_group(
    dep: Deployment, name: str, vpc: aws.ec2.Vpc, *, ports: Sequence[int], cidr: str
) -> aws.ec2.SecurityGroup:
    """A security group open on ``ports`` (TCP) from ``cidr``, egress anywhere."""
    return aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=vpc.id,
        description=f"mapt {name}: tcp {', '.join(str(p) for p in ports)}",
        ingress=[
            {"protocol": "tcp", "from_port": port, "to_port": port, "cidr_blocks": [cidr]}
            for port in ports
        ],
        egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": [ANYWHERE]}],
        tags=dep.named_tags(f"mapt-{name}"),
        opts=dep.opts(),
    )


def _endpoints(
    dep: Deployment,
    region: str,
    vpc: aws.ec2.Vpc,
    subnet: aws.ec2.Subnet,
    route_tables: Sequence[aws.ec2.RouteTable],
    names: Sequence[str],
) -> None:
    """VPC endpoints so the host reaches S3, ECR or SSM without the internet."""
    if "s3" in names:
        aws.ec2.VpcEndpoint(
            "endpoint-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in route_tables],
            tags=dep.named_tags("mapt-s3"),
            opts=dep.opts(),
        )
    services = [svc for name in names for svc in _INTERFACE_ENDPOINTS.get(name, ())]
    if not services:
        return
    endpoint_sg = security_group(dep, "endpoints", vpc, ports=[HTTPS_PORT], cidr=VPC_CIDR)
    for service in services:
        aws.ec2.VpcEndpoint(
            f"endpoint-{service.replace('.', '-')}",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.{service}",
            vpc_endpoint_type="Interface",
            subnet_ids=[subnet.id],
            security_group_ids=[endpoint_sg.id],
            private_dns_enabled=True,
            tags=dep.named_tags(f"mapt-{service}"),
            opts=dep.opts(),
        )
