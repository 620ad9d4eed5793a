"""A spot price history and on-demand prices that a test writes, served to boto3 clients.

moto's DescribeSpotPriceHistory answers one fixed price and ignores the time window;
the Pricing API is not in moto. ``PriceHistory`` answers both from what the test gives,
as AWS does: DescribeSpotPriceHistory filtered by AZ, types and product, the changes
within [StartTime, EndTime] plus the one in force at StartTime, newest first, in pages
of ``page_size`` (so a reader that stops after one page misses prices); GetProducts
with one on-demand document per (region, type). It plugs into botocore's handler list
like ``tests.harness.spot_market.SpotMarket`` (``installed(history.handlers())``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tests.harness.spot_market import MarketCall, MarketRow, _price_document, _response

_PARAMS_KEY = "mapt_test_price_history_params"


@dataclass(frozen=True)
class Change:
    """One spot price change: ``price`` (a decimal string, as AWS writes it) from ``at``."""

    availability_zone: str
    instance_type: str
    at: datetime
    price: str
    product: str = "Linux/UNIX"


@dataclass
class PriceHistory:
    changes: list[Change]
    # (region, instance type) -> on-demand USD/hour (Linux).
    on_demand: dict[tuple[str, str], float]
    page_size: int = 2
    calls: list[MarketCall] = field(default_factory=list)

    def describe_spot_price_history(self, region: str, params: Mapping[str, Any]) -> dict[str, Any]:
        zone = params.get("AvailabilityZone")
        types = set(params.get("InstanceTypes", []))
        products = set(params.get("ProductDescriptions", []))
        start = _aware(params["StartTime"])
        end = _aware(params["EndTime"])
        chosen = [
            change
            for change in self.changes
            if change.availability_zone.startswith(region)
            and (zone is None or change.availability_zone == zone)
            and (not types or change.instance_type in types)
            and (not products or change.product in products)
            and change.at <= end
        ]
        within = [change for change in chosen if change.at >= start]
        # AWS adds the change in force at StartTime (the newest before it), per type and AZ.
        for key in {(c.availability_zone, c.instance_type) for c in chosen}:
            before = [c for c in chosen if (c.availability_zone, c.instance_type) == key]
            before = [c for c in before if c.at < start]
            if before:
                within.append(max(before, key=lambda c: c.at))
        within.sort(key=lambda change: change.at, reverse=True)
        items = [
            {
                "AvailabilityZone": change.availability_zone,
                "InstanceType": change.instance_type,
                "ProductDescription": change.product,
                "SpotPrice": change.price,
                "Timestamp": change.at,
            }
            for change in within
        ]
        offset = int(params.get("NextToken") or 0)
        page = items[offset : offset + self.page_size]
        more = offset + self.page_size < len(items)
        return {
            "SpotPriceHistory": page,
            **({"NextToken": str(offset + self.page_size)} if more else {}),
        }

    def get_products(self, region: str, params: Mapping[str, Any]) -> dict[str, Any]:
        wanted = {
            f["Field"]: set(f["Value"].split(",")) if f["Type"] == "ANY_OF" else {f["Value"]}
            for f in params.get("Filters", [])
        }
        if "Linux" not in wanted.get("operatingSystem", {"Linux"}):
            return {"PriceList": [], "FormatVersion": "aws_v1"}
        documents = [
            _price_document(MarketRow(instance_type, 0, 0, price, None, price_region, ""))
            for (price_region, instance_type), price in self.on_demand.items()
            if price_region in wanted.get("regionCode", {price_region})
            and instance_type in wanted.get("instanceType", {instance_type})
        ]
        return {"PriceList": documents, "FormatVersion": "aws_v1"}

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS_KEY] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        operation = {
            "DescribeSpotPriceHistory": self.describe_spot_price_history,
            "GetProducts": self.get_products,
        }.get(model.name)
        if operation is None:
            return None
        region = context.get("client_region") or "us-east-1"
        params = context.get(_PARAMS_KEY, {})
        self.calls.append(MarketCall(model.name, region, params))
        return _response(200), operation(region, params)

    def handlers(self) -> list[tuple[str, Any]]:
        return [
            ("before-parameter-build.ec2", self._keep_params),
            ("before-call.ec2", self._answer),
            ("before-parameter-build.pricing", self._keep_params),
            ("before-call.pricing", self._answer),
        ]

    def calls_to(self, operation: str) -> list[MarketCall]:
        return [call for call in self.calls if call.operation == operation]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
