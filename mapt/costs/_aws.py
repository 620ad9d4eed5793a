"""The prices of a placement from AWS: spot price history and on-demand prices (boto3).

Through the allocation's queries (``mapt.allocation``'s ``Ec2Queries``): one client per
region, botocore's standard retries, every page of DescribeSpotPriceHistory, and the
Pricing API's on-demand documents parsed by the same code that prices offers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from mapt.costs._pricing import Cost, Placement, PriceChange, PriceUnknownError, interval_cost


class PriceSource(Protocol):
    """Where prices come from (AWS; in tests the same AWS calls, answered by a stub)."""

    def spot_history(
        self, placement: Placement, start: datetime, end: datetime
    ) -> list[PriceChange]:
        """The AZ's price changes over [start, end), the one in force at start included,
        oldest data first."""
        ...

    def on_demand(self, placement: Placement) -> dict[str, Decimal]:
        """Each type's on-demand USD/hour in the placement's region."""
        ...


class AwsPrices:
    """``PriceSource`` over boto3 (``session``: a ``boto3.Session``; default boto3's)."""

    def __init__(self, session: Any = None) -> None:
        from mapt.allocation import Ec2Queries

        self.queries = Ec2Queries(session, max_workers=4)

    def spot_history(
        self, placement: Placement, start: datetime, end: datetime
    ) -> list[PriceChange]:
        items = self.queries.spot_price_history(
            placement.region,
            placement.instance_types,
            placement.product,
            start,
            end,
            availability_zone=placement.availability_zone,
        )
        # AWS answers newest first: reversed, later entries are newer data.
        return [
            PriceChange(item["InstanceType"], item["Timestamp"], Decimal(item["SpotPrice"]))
            for item in reversed(items)
            if item["AvailabilityZone"] == placement.availability_zone
        ]

    def on_demand(self, placement: Placement) -> dict[str, Decimal]:
        prices, reason = self.queries.on_demand_price_list(
            placement.instance_types, placement.product, [placement.region]
        )
        if prices is None:
            raise PriceUnknownError(
                f"the on-demand price of {placement.instance_types[0]} in {placement.region} "
                f"is unknown: {reason}",
                hint="Grant pricing:GetProducts to price what spot saved.",
            )
        # The Pricing API writes prices as decimal strings; the float keeps their digits.
        return {
            t: Decimal(repr(p)) for (region, t), p in prices.items() if region == placement.region
        }


def price_interval(
    source: PriceSource, placement: Placement, start: datetime, end: datetime
) -> Cost:
    """The cost of [start, end) at ``placement``, from ``source``'s prices."""
    history = source.spot_history(placement, start, end) if placement.spot else []
    return interval_cost(
        placement, start, end, history=history, on_demand=source.on_demand(placement)
    )
