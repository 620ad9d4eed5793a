"""A spot market replayed from real prices, served to boto3 clients in-process.

moto answers ``DescribeSpotPriceHistory`` with a fixed dummy price and does not
implement ``GetSpotPlacementScores`` at all. ``SpotMarket`` serves both operations
from ``../shared/data/aws-spot-market/vms.csv`` (real spot prices per AZ ID) and from
placement scores that the test gives, paginated like AWS, for any client created
while it is installed; every other call still goes to moto.

It plugs into botocore's event system: ``before-parameter-build`` keeps the call's
parameters, ``before-call`` answers the two operations (a handler that returns a
response there short-circuits the HTTP request). The handlers are added to botocore's
built-in handler list, so clients from any session created while installed see them.

Price history: each (instance type, AZ) has three points, newest first as AWS returns
them: the real price 10 minutes ago, an older price (x1.25) 40 minutes ago, and a
stale price (x0.5) three hours ago. A reader that takes anything but the newest point
of the last hour gets a price that differs from the CSV.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse

REPO_ROOT = Path(__file__).resolve().parents[2]
VMS_CSV = (
    Path(os.environ.get("MAPT_SHARED_DIR", REPO_ROOT.parent / "shared"))
    / "data"
    / "aws-spot-market"
    / "vms.csv"
)

# (age, price factor) of the history points served for every (type, AZ), newest first.
HISTORY = ((timedelta(minutes=10), 1.0), (timedelta(minutes=40), 1.25), (timedelta(hours=3), 0.5))
_PARAMS_KEY = "mapt_test_market_params"


@dataclass(frozen=True)
class MarketRow:
    """One CSV row: a type's on-demand price and its spot price in one AZ."""

    instance_type: str
    vcpus: float
    memory_gib: float
    on_demand_price: float
    spot_price: str | None
    region: str
    az_id: str


def load_rows(path: Path = VMS_CSV) -> list[MarketRow]:
    """Read the market CSV (see the README beside it for its columns)."""
    with path.open(newline="") as handle:
        return [
            MarketRow(
                instance_type=row["InstanceType"],
                vcpus=float(row["vCPUs"]),
                memory_gib=float(row["MemoryGiB"]),
                on_demand_price=float(row["Price"]),
                spot_price=row["SpotPrice"] or None,
                region=row["Region"],
                az_id=row["AvailabilityZone"],
            )
            for row in csv.DictReader(handle)
        ]


def moto_zone_names() -> dict[str, tuple[str, str]]:
    """AZ ID -> (region, AZ name), as moto's DescribeAvailabilityZones reports them."""
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    return {
        zone.zone_id: (zone.region_name, zone.name)
        for zones in RegionsAndZonesBackend.zones.values()
        for zone in zones
    }


@dataclass
class MarketCall:
    """One call the market answered: operation, the client's region and its parameters."""

    operation: str
    region: str
    params: dict[str, Any]


class _ClientError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        self.code, self.message, self.status = code, message, status


@dataclass
class SpotMarket:
    """The two spot-market operations, answered from ``rows``.

    ``scores`` maps AZ IDs to placement scores (1-10); AZs not in it get
    ``default_score``, or are left out of the answer when that is None. Like AWS, a
    placement-score answer holds at most ``top_scores`` entries, best first.
    ``score_errors`` maps a region to the error code GetSpotPlacementScores returns
    when called there (the API is not served everywhere; ``"*"`` means everywhere).
    ``products`` are the product descriptions priced (CSV prices are Linux/UNIX).
    """

    rows: list[MarketRow]
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    scores: dict[str, int] = field(default_factory=dict)
    default_score: int | None = None
    top_scores: int = 10
    score_errors: dict[str, str] = field(default_factory=dict)
    products: tuple[str, ...] = ("Linux/UNIX",)
    page_size: int = 1000
    pricing_error: str | None = None
    calls: list[MarketCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        zone_names = moto_zone_names()
        # Rows whose AZ ID moto does not know cannot be named; leave them out.
        self.rows = [row for row in self.rows if row.az_id in zone_names]
        self._zone = zone_names
        self._by_region: dict[str, list[MarketRow]] = {}
        for row in self.rows:
            self._by_region.setdefault(row.region, []).append(row)

    # -- facts for test assertions ------------------------------------------------
    def az_name(self, az_id: str) -> str:
        return self._zone[az_id][1]

    def row(self, instance_type: str, az_id: str) -> MarketRow:
        for row in self.rows:
            if row.instance_type == instance_type and row.az_id == az_id:
                return row
        raise KeyError((instance_type, az_id))

    def calls_to(self, operation: str) -> list[MarketCall]:
        return [call for call in self.calls if call.operation == operation]

    # -- the operations -------------------------------------------------------------
    def describe_spot_price_history(self, region: str, params: Mapping[str, Any]) -> dict[str, Any]:
        filters = {f["Name"]: set(f["Values"]) for f in params.get("Filters", [])}
        types = set(params.get("InstanceTypes", [])) | filters.get("instance-type", set())
        products = set(params.get("ProductDescriptions", [])) | filters.get(
            "product-description", set()
        )
        zones = filters.get("availability-zone", set())
        if params.get("AvailabilityZone"):
            zones.add(params["AvailabilityZone"])
        start = params.get("StartTime")
        end = params.get("EndTime") or self.now
        items = []
        for row in self._by_region.get(region, []):
            if row.spot_price is None:
                continue
            if types and row.instance_type not in types:
                continue
            az_name = self.az_name(row.az_id)
            if zones and az_name not in zones:
                continue
            for product in self.products:
                if products and product not in products:
                    continue
                for age, factor in HISTORY:
                    stamp = self.now - age
                    if (start is not None and stamp < _aware(start)) or stamp > _aware(end):
                        continue
                    price = (
                        row.spot_price if factor == 1.0 else f"{float(row.spot_price) * factor:.6f}"
                    )
                    items.append(
                        {
                            "AvailabilityZone": az_name,
                            "InstanceType": row.instance_type,
                            "ProductDescription": product,
                            "SpotPrice": price,
                            "Timestamp": stamp,
                        }
                    )
        items.sort(key=lambda item: item["Timestamp"], reverse=True)
        page, token = self._page(items, params, maximum=1000)
        return {"SpotPriceHistory": page, **({"NextToken": token} if token else {})}

    def get_spot_placement_scores(self, region: str, params: Mapping[str, Any]) -> dict[str, Any]:
        error = self.score_errors.get(region) or self.score_errors.get("*")
        if error:
            raise _ClientError(error, f"GetSpotPlacementScores is not available: {error}")
        types = set(params.get("InstanceTypes", []))
        regions = set(params.get("RegionNames", [])) or {row.region for row in self.rows}
        offered: dict[str, str] = {}
        for row in self.rows:
            if row.region in regions and (not types or row.instance_type in types):
                offered[row.az_id] = row.region
        entries = []
        for az_id, az_region in offered.items():
            score = self.scores.get(az_id, self.default_score)
            if score is not None:
                entries.append({"Region": az_region, "AvailabilityZoneId": az_id, "Score": score})
        if not params.get("SingleAvailabilityZone"):
            best: dict[str, dict[str, Any]] = {}
            for entry in entries:
                current = best.get(entry["Region"])
                if current is None or entry["Score"] > current["Score"]:
                    best[entry["Region"]] = {"Region": entry["Region"], "Score": entry["Score"]}
            entries = list(best.values())
        entries.sort(
            key=lambda entry: (
                -entry["Score"],
                entry["Region"],
                entry.get("AvailabilityZoneId", ""),
            )
        )
        entries = entries[: self.top_scores]
        page, token = self._page(entries, params, maximum=1000)
        return {"SpotPlacementScores": page, **({"NextToken": token} if token else {})}

    def get_products(self, region: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The Pricing API's on-demand price documents, from the CSV's ``Price`` column.

        The CSV prices Linux, so only ``operatingSystem=Linux`` finds products.
        """
        if self.pricing_error:
            raise _ClientError(self.pricing_error, "Pricing API is not available")
        wanted = {f["Field"]: f["Value"] for f in params.get("Filters", [])}
        if wanted.get("operatingSystem", "Linux") != "Linux":
            return {"PriceList": [], "FormatVersion": "aws_v1"}
        documents: dict[tuple[str, str], str] = {}
        for row in self.rows:
            if wanted.get("instanceType", row.instance_type) != row.instance_type:
                continue
            if wanted.get("regionCode", row.region) != row.region:
                continue
            documents.setdefault((row.region, row.instance_type), _price_document(row))
        page, token = self._page(list(documents.values()), params, maximum=100)
        return {
            "PriceList": page,
            "FormatVersion": "aws_v1",
            **({"NextToken": token} if token else {}),
        }

    def _page(
        self, items: list[dict[str, Any]], params: Mapping[str, Any], maximum: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        size = min(int(params.get("MaxResults") or maximum), self.page_size)
        offset = int(params.get("NextToken") or 0)
        end = offset + size
        return items[offset:end], (str(end) if end < len(items) else None)

    # -- plugging into botocore ---------------------------------------------------
    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS_KEY] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        operation = {
            "DescribeSpotPriceHistory": self.describe_spot_price_history,
            "GetSpotPlacementScores": self.get_spot_placement_scores,
            "GetProducts": self.get_products,
        }.get(model.name)
        if operation is None:
            return None
        region = context.get("client_region") or "us-east-1"
        params = context.get(_PARAMS_KEY, {})
        self.calls.append(MarketCall(model.name, region, params))
        try:
            return _response(200), operation(region, params)
        except _ClientError as error:
            body = {"Error": {"Code": error.code, "Message": error.message}}
            return _response(error.status), body

    def handlers(self) -> list[tuple[str, Any]]:
        return [
            ("before-parameter-build.ec2", self._keep_params),
            ("before-call.ec2", self._answer),
            ("before-parameter-build.pricing", self._keep_params),
            ("before-call.pricing", self._answer),
        ]


def _price_document(row: MarketRow) -> str:
    sku = f"SKU{abs(hash((row.region, row.instance_type))) % 10**8:08d}"
    return json.dumps(
        {
            "product": {
                "sku": sku,
                "attributes": {
                    "instanceType": row.instance_type,
                    "regionCode": row.region,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                },
            },
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "pricePerUnit": {"USD": f"{row.on_demand_price:.10f}"},
                            }
                        }
                    }
                }
            },
        }
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _response(status: int) -> AWSResponse:
    return AWSResponse("https://ec2.amazonaws.com/", status, {}, None)


@dataclass
class ApiCall:
    service: str
    operation: str
    region: str


@dataclass
class ApiCallLog:
    """Every AWS API call made by any boto3 client while installed."""

    calls: list[ApiCall] = field(default_factory=list)

    def _record(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        self.calls.append(ApiCall(service, model.name, context.get("client_region") or ""))

    def count(self, operation: str | None = None, service: str = "ec2") -> int:
        return sum(
            1
            for call in self.calls
            if call.service == service and (operation is None or call.operation == operation)
        )

    def handlers(self) -> list[tuple[str, Any]]:
        # provide-client-params is emitted for every call, before any handler can answer it.
        return [("provide-client-params", self._record)]


@contextmanager
def installed(handlers: Iterable[tuple[str, Any]]) -> Iterator[None]:
    """Add botocore handlers for clients created from now on, until the generator ends."""
    import boto3
    from botocore.handlers import BUILTIN_HANDLERS

    added = list(handlers)
    BUILTIN_HANDLERS.extend(added)
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        for handler in added:
            BUILTIN_HANDLERS.remove(handler)
        boto3.DEFAULT_SESSION = None
