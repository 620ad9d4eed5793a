"""Read-only EC2 (and Pricing) queries that feed the selection, one client per region.

Every call is paginated to the end, retried by botocore's ``standard`` retry mode
(throttling included), and issued in parallel across regions where the algorithm
allows, so a fresh spot allocation costs a handful of round trips, not one per region.
Nothing here writes to AWS.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from mapt.allocation._selection import InstanceTypeInfo, PricePoint, Zone
from mapt.core import (
    CREDENTIALS_HINT,
    InputError,
    PrerequisiteError,
    aws_error,
    aws_error_code,
    get_logger,
    is_aws_error,
    translating_aws_errors,
)

log = get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_OPTED_IN = ("opt-in-not-required", "opted-in")
# GetSpotPlacementScores is not served from every region and has an undocumented
# per-account quota: ask once, in a few regions at most, before going on without it.
SCORE_ATTEMPTS = 2
# The Pricing API answers from these endpoints only.
PRICING_REGION = "us-east-1"
_PRICING_OS = {
    "Linux/UNIX": "Linux",
    "Linux/UNIX (Amazon VPC)": "Linux",
    "Red Hat Enterprise Linux": "RHEL",
    "SUSE Linux": "SUSE",
    "Windows": "Windows",
    "Windows (Amazon VPC)": "Windows",
}


def check_credentials(session: Any) -> None:
    """Refuse to start without AWS credentials (``PrerequisiteError``, exit 5).

    botocore's own provider chain decides (environment, profiles, SSO, instance role),
    so this finds exactly what the later calls would use; nothing is called on AWS
    unless the chain itself does (an SSO or role profile).
    """
    if session.get_credentials() is None:
        raise PrerequisiteError("no AWS credentials were found", hint=CREDENTIALS_HINT)


class Ec2Queries:
    """The EC2 queries of one allocation, sharing a boto3 session and its clients.

    ``session`` is a ``boto3.Session`` (a new default one when None). Clients are
    created on the calling thread (sessions are not thread-safe) and then used from a
    thread pool (clients are).
    """

    def __init__(self, session: Any = None, max_workers: int = 64) -> None:
        import boto3
        from botocore.config import Config

        self._session: Any = session if session is not None else boto3.Session()
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=max_workers,
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._max_workers = max_workers

    def client(self, region: str, service: str = "ec2") -> Any:
        key = (service, region)
        found = self._clients.get(key)
        if found is not None:  # the common case needs no lock
            return found
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service, region_name=region, config=self._config
                )
            return self._clients[key]

    def prepare_clients(self, regions: Iterable[str]) -> None:
        """Create the regions' clients now (CPU work), e.g. while a query is in flight."""
        for region in regions:
            self.client(region)

    def executor(self, jobs: int) -> ThreadPoolExecutor:
        """A thread pool for ``jobs`` concurrent queries (capped at ``max_workers``)."""
        return ThreadPoolExecutor(max_workers=max(1, min(self._max_workers, jobs)))

    def in_parallel(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, run concurrently, results in order."""
        with self.executor(len(items)) as pool:
            return list(pool.map(fn, items))

    # -- instance types -------------------------------------------------------------
    def instance_types(
        self,
        region: str,
        *,
        names: Sequence[str] = (),
        filters: Mapping[str, str] | None = None,
    ) -> list[InstanceTypeInfo]:
        """DescribeInstanceTypes in ``region``, all pages, by names and/or filters."""
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {}
        if names:
            kwargs["InstanceTypes"] = list(names)
        if filters:
            kwargs["Filters"] = [{"Name": k, "Values": [v]} for k, v in filters.items()]
        paginator = self.client(region).get_paginator("describe_instance_types")
        with translating_aws_errors("DescribeInstanceTypes", region=region):
            try:
                return [
                    InstanceTypeInfo.from_api(item)
                    for page in paginator.paginate(**kwargs)
                    for item in page["InstanceTypes"]
                ]
            except ClientError as error:
                if aws_error_code(error) != "InvalidInstanceType":
                    raise
                message = error.response.get("Error", {}).get("Message", error)
                raise InputError(f"unknown instance type in --compute-sizes: {message}") from error

    # -- regions and images -----------------------------------------------------------
    def regions(self, home: str) -> tuple[list[str], set[str]]:
        """(regions this account can use, every region name AWS knows)."""
        with translating_aws_errors("DescribeRegions", region=home):
            answer = self.client(home).describe_regions(AllRegions=True)["Regions"]
        usable = sorted(r["RegionName"] for r in answer if r.get("OptInStatus") in _OPTED_IN)
        return usable, {r["RegionName"] for r in answer}

    def has_image(self, region: str, name: str, owner: str | None, arch: str | None) -> bool:
        """Does DescribeImages find an image called ``name`` (glob) in ``region``?"""
        filters = [{"Name": "name", "Values": [name]}]
        if arch:
            filters.append({"Name": "architecture", "Values": [arch]})
        kwargs: dict[str, Any] = {"Filters": filters}
        if owner:
            kwargs["Owners"] = [owner]
        try:
            return bool(self.client(region).describe_images(**kwargs)["Images"])
        except Exception as error:
            if not is_aws_error(error):
                raise
            failure = aws_error(error, call="DescribeImages", region=region)
            if isinstance(failure, PrerequisiteError):
                raise failure from error
            log.warning("cannot look up image %r (%s); leaving the region out", name, failure)
            return False

    # -- placement scores -------------------------------------------------------------
    def placement_scores(
        self, instance_types: Sequence[str], regions: Sequence[str], ask_in: Sequence[str]
    ) -> dict[str, tuple[str, int]] | None:
        """AZ ID -> (region, score) from one batched GetSpotPlacementScores, all pages.

        Tried in the regions of ``ask_in`` in turn (at most ``SCORE_ATTEMPTS``); None
        when none of them answers, so the caller can rank on price alone. Any failure
        but bad credentials counts as "no answer": a refusal (403), an error page AWS
        or a stand-in endpoint sends instead of scores (5xx, unparseable), an endpoint
        that does not implement the call.
        """
        reasons: list[str] = []
        for region in list(dict.fromkeys(ask_in))[:SCORE_ATTEMPTS]:
            paginator = self.client(region).get_paginator("get_spot_placement_scores")
            try:
                scores: dict[str, tuple[str, int]] = {}
                for page in paginator.paginate(
                    InstanceTypes=list(instance_types),
                    TargetCapacity=1,
                    TargetCapacityUnitType="units",
                    SingleAvailabilityZone=True,
                    RegionNames=list(regions),
                ):
                    for entry in page.get("SpotPlacementScores", []):
                        zone_id = entry.get("AvailabilityZoneId")
                        if zone_id:
                            scores[zone_id] = (entry["Region"], int(entry["Score"]))
                return scores
            except Exception as error:
                if not (is_aws_error(error) or isinstance(error, NotImplementedError)):
                    raise
                failure = aws_error(error, call="GetSpotPlacementScores", region=region)
                if isinstance(failure, PrerequisiteError):
                    raise failure from error
                log.debug("%s", failure)
                reasons.append(failure.message)
        log.warning(
            "spot placement scores are unavailable (%s); ranking on price alone",
            "; ".join(reasons),
        )
        return None

    # -- zones and prices -------------------------------------------------------------
    def zones(self, region: str) -> list[Zone]:
        """The region's available availability zones (not local or wavelength zones)."""
        with translating_aws_errors("DescribeAvailabilityZones", region=region):
            answer = self.client(region).describe_availability_zones(
                Filters=[
                    {"Name": "zone-type", "Values": ["availability-zone"]},
                    {"Name": "state", "Values": ["available"]},
                ]
            )["AvailabilityZones"]
        return [Zone(region, z["ZoneName"], z["ZoneId"]) for z in answer]

    def spot_prices(
        self, region: str, instance_types: Sequence[str], product: str, now: datetime
    ) -> list[PricePoint]:
        """The last hour of spot price history in ``region``, every page."""
        paginator = self.client(region).get_paginator("describe_spot_price_history")
        with translating_aws_errors("DescribeSpotPriceHistory", region=region):
            return [
                PricePoint(
                    availability_zone=item["AvailabilityZone"],
                    instance_type=item["InstanceType"],
                    price=float(item["SpotPrice"]),
                    timestamp=_aware(item["Timestamp"]),
                )
                for page in paginator.paginate(
                    InstanceTypes=list(instance_types),
                    ProductDescriptions=[product],
                    StartTime=now - timedelta(hours=1),
                    EndTime=now,
                )
                for item in page["SpotPriceHistory"]
            ]

    def type_offerings(self, region: str, instance_types: Sequence[str]) -> dict[str, set[str]]:
        """AZ name -> which of ``instance_types`` it offers (DescribeInstanceTypeOfferings)."""
        paginator = self.client(region).get_paginator("describe_instance_type_offerings")
        offered: dict[str, set[str]] = {}
        with translating_aws_errors("DescribeInstanceTypeOfferings", region=region):
            for page in paginator.paginate(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": list(instance_types)}],
            ):
                for item in page["InstanceTypeOfferings"]:
                    offered.setdefault(item["Location"], set()).add(item["InstanceType"])
        return offered

    # -- on-demand prices (optional) ----------------------------------------------------
    def on_demand_prices(
        self, instance_types: Iterable[str], product: str
    ) -> dict[tuple[str, str], float] | None:
        """(region, type) -> on-demand USD/hour from the Pricing API, or None if it fails.

        Optional information: any failure (no permission, API not reachable) is logged
        at debug level and answered with None (``on_demand_price_list`` says why).
        """
        return self.on_demand_price_list(instance_types, product)[0]

    def on_demand_price_list(
        self, instance_types: Iterable[str], product: str
    ) -> tuple[dict[tuple[str, str], float] | None, str | None]:
        """``on_demand_prices`` and, when they are None, the reason in a few words."""
        operating_system = _PRICING_OS.get(product)
        if operating_system is None:
            return None, f"the Pricing API does not price product {product!r}"
        client = self.client(PRICING_REGION, "pricing")

        def prices_of(instance_type: str) -> dict[tuple[str, str], float]:
            found: dict[tuple[str, str], float] = {}
            filters = {
                "instanceType": instance_type,
                "operatingSystem": operating_system,
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "capacitystatus": "Used",
            }
            paginator = client.get_paginator("get_products")
            for page in paginator.paginate(
                ServiceCode="AmazonEC2",
                Filters=[
                    {"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()
                ],
            ):
                for document in page.get("PriceList", []):
                    parsed = _on_demand_price(document)
                    if parsed is not None:
                        found[(parsed[0], instance_type)] = parsed[1]
            return found

        try:
            merged: dict[tuple[str, str], float] = {}
            for part in self.in_parallel(prices_of, sorted(set(instance_types))):
                merged.update(part)
            return merged, None
        except Exception as error:
            if not (is_aws_error(error) or isinstance(error, NotImplementedError)):
                raise
            log.debug("on-demand prices unavailable: %s", aws_error(error, call="GetProducts"))
            reason = aws_error_code(error) or type(error).__name__
            return None, f"the Pricing API did not answer ({reason})"


def _on_demand_price(document: str | Mapping[str, Any]) -> tuple[str, float] | None:
    """(region, USD/hour) from one Pricing API product document."""
    product = json.loads(document) if isinstance(document, str) else document
    region = product.get("product", {}).get("attributes", {}).get("regionCode")
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if region and usd is not None and float(usd) > 0:
                return region, float(usd)
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
