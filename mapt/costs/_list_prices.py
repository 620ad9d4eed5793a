"""What a host holds besides its instance, at AWS's list prices: never in the spot figure.

The spot figures price the instance alone, from what AWS charged. A host's network
costs too: spot hosts sit behind a network load balancer unless they have a name of
their own (``--dns-zone``, see specs/features/stable-names.md), addresses are public IPv4,
an air-gapped host boots through a NAT gateway. Those are charged by the hour at list
prices that mapt does not read from AWS; they are shown apart, labelled as list prices.

Prices (USD, us-east-1, as AWS publishes them; other regions differ by a few percent):

- public IPv4 address: 0.005 per address-hour, in every region (AWS VPC pricing, public
  IPv4 addresses, charged since 2024-02-01);
- network load balancer: 0.0225 per load-balancer-hour, capacity units (NLCU, 0.006 per
  hour each) not counted: they depend on traffic, which mapt does not see (Elastic Load
  Balancing pricing);
- NAT gateway: 0.045 per gateway-hour, data processed (0.045 per GB) not counted (VPC
  pricing, NAT gateways).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mapt.costs._pricing import shown

LIST_PRICE_REGION = "us-east-1"


@dataclass(frozen=True)
class ListPrice:
    resource: str
    usd_per_hour: Decimal
    note: str


PUBLIC_IPV4 = ListPrice("public_ipv4", Decimal("0.005"), "per address-hour, every region")
NETWORK_LOAD_BALANCER = ListPrice(
    "network_load_balancer",
    Decimal("0.0225"),
    "per load-balancer-hour; capacity units (traffic) not counted",
)
NAT_GATEWAY = ListPrice(
    "nat_gateway", Decimal("0.045"), "per gateway-hour; data processed not counted"
)


def held_resources(
    *, spot: bool, airgap: bool, load_balancer: bool
) -> list[tuple[ListPrice, int | None]]:
    """(list price, how many for the whole interval) of a host's placement;
    ``load_balancer``: a spot host behind its network load balancer.

    None: held for part of the interval only, for a time mapt does not record (the
    air-gap bootstrap NAT gateway lives until the host is ready).
    """
    balanced = spot and load_balancer
    held: list[tuple[ListPrice, int | None]] = []
    if balanced:
        held.append((NETWORK_LOAD_BALANCER, 1))
    if airgap:
        # The bastion's address; the host and its (internal) balancer have none.
        held += [(PUBLIC_IPV4, 1), (NAT_GATEWAY, None)]
    else:
        # Behind a balancer: its Elastic IP and the instance's own (public subnet); a
        # named spot host: the instance's own; on demand: the instance's Elastic IP,
        # which replaces its own.
        held.append((PUBLIC_IPV4, 2 if balanced else 1))
    return held


def list_priced(
    hours_by_shape: dict[tuple[bool, bool, bool], Decimal],
) -> list[dict[str, object]]:
    """The list-priced resources of hosts that ran ``hours`` in each (spot, airgap,
    load balancer) shape.

    One entry per resource: its hours (None when unknown), cost at list price (None
    likewise), the price used and what it leaves out.
    """
    totals: dict[str, tuple[ListPrice, Decimal | None]] = {}
    for (spot, airgap, load_balancer), hours in hours_by_shape.items():
        for price, count in held_resources(spot=spot, airgap=airgap, load_balancer=load_balancer):
            known = totals.get(price.resource, (price, Decimal(0)))[1]
            resource_hours = None if count is None or known is None else known + hours * count
            totals[price.resource] = (price, resource_hours)
    return [
        {
            "resource": price.resource,
            "hours": None if hours is None else shown(hours),
            "cost": None if hours is None else shown(hours * price.usd_per_hour),
            "list_price": {
                "usd_per_hour": float(price.usd_per_hour),
                "region": LIST_PRICE_REGION,
                "note": price.note,
            },
        }
        for price, hours in totals.values()
    ]
