"""Read-only EC2 (and Pricing) queries that feed the selection, one client per region.

Every call is paginated to the end, retried by botocore's ``standard`` retry mode
(throttling included), and issued in parallel across regions where the algorithm
allows, so a fresh spot allocation costs two round trips, not one per region. A
region's client is made by the first worker thread that needs it, while the other
regions' requests are already in flight. Nothing here writes to AWS.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, TypeVar

from mapt.allocation._selection import InstanceTypeInfo, PricePoint, Zone
from mapt.core import (
    CREDENTIALS_HINT,
    PERMISSION_ERROR_CODES,
    InputError,
    PrerequisiteError,
    aws_error,
    aws_error_code,
    client_config,
    default_aws_session,
    get_logger,
    is_aws_error,
    load_ca_bundle,
    plain_json_loader,
    process_wide_sharing,
    translating_aws_errors,
)

log = get_logger(__name__)

T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")

_OPTED_IN = ("opt-in-not-required", "opted-in")
# GetSpotPlacementScores is not served from every region and has an undocumented
# per-account quota: ask once, in a few regions at most, before going on without it.
SCORE_ATTEMPTS = 2
# GetSpotPlacementScores takes at most 10 RegionNames and 1000 InstanceTypes (the EC2
# API model's limits): more regions are asked in parallel calls of 10. No compute
# request matches 1000 types, so every matching type is scored in one call.
SCORE_REGIONS_PER_CALL = 10
# The regions AWS enables in every account of the aws partition, for good (those
# launched before 20 March 2019 cannot be disabled): a spot ranking asks each of them
# unless excluded, so their clients can be built before DescribeRegions answers.
ALWAYS_ENABLED_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
)
# The most requests one region's EC2 client has in flight at once: the home region's
# round 1 (the types, the regions and a score call per ten regions of the partition,
# 6 in the aws partition: 16 leaves room for more regions), any other region's zones,
# prices and image (at most 3).
# Each connection pool of a client is made with room for this many (urllib3 fills
# its queue up front and empties it when the client goes: 128 places cost about
# 0.5 ms a client, 10 about 0.1 ms); more at once would still be served, each on a
# connection of its own closed after use. The Pricing client sends every batch at
# once: its pool holds ``max_workers``.
EC2_CONNECTIONS_PER_CLIENT = 16
# The Pricing API answers from these endpoints only.
PRICING_REGION = "us-east-1"
# GetProducts returns at most 100 documents a page, and a filter value holds at most
# 1024 characters. The filters below match one document per (type, region), so a call
# asks for at most this many pairs: each answer fits one page, with room to spare,
# and the calls run in parallel instead of paging one after another.
PRICING_PAIRS_PER_CALL = 80
PRICING_VALUE_CHARS = 1024
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


@contextmanager
def models_loading(
    make_session: Callable[[], S], services: Sequence[str] = ("ec2",)
) -> Iterator[Future[S]]:
    """Make a session with ``make_session`` in a thread and load the botocore data
    its first client of each of ``services`` reads, meanwhile; the future is the session.

    A session's first client of a service parses its model (EC2's: about 0.15 s of
    CPU, before a ranking can send its first request); later clients of the session
    find it in the session's loader. An entry point that waits on something else
    first (a subprocess, a backend) lets the parse run then, off the ranking's
    critical path (the CPU is moved, not removed). No client is built and no
    credentials are resolved here: only the loader's files are read. The session is
    the caller's once the block ends without an error (the thread is joined then);
    ``result()`` raises what making it raised (a profile that does not exist), after
    the block's own checks. A block that raises does not wait for the thread.
    """
    made: Future[S] = Future()

    def load() -> None:
        try:
            session = make_session()
        except BaseException as error:  # the caller's result() raises it
            made.set_exception(error)
            return
        load_client_data(session, services)
        made.set_result(session)

    loader = threading.Thread(target=load, name="mapt-models", daemon=True)
    loader.start()
    yield made
    loader.join()


def load_client_data(session: Any, services: Sequence[str]) -> None:
    """Read what botocore's ``create_client`` of each of ``services`` reads from
    ``session``'s loader, in the same calls (its cache is keyed by them), and the
    paginators the queries use; the collector paused meanwhile and the models then
    frozen, as a ranking's first client is (``collection_paused``); then load the CA
    bundle its HTTPS clients verify with (``load_ca_bundle``).

    Only ahead of use: a failure is logged at debug level, and the clients made later
    read what is missing and raise what they must.
    """
    core = session._session  # boto3.Session's botocore session
    try:
        loader = plain_json_loader(core.get_component("data_loader"))
        with collection_paused():
            for service in services:
                model = loader.load_service_model(service, "service-2", api_version=None)
                loader.load_service_model(service, "endpoint-rule-set-1", api_version=None)
                version = model["metadata"]["apiVersion"]
                loader.load_service_model(service, "paginators-1", version)
            loader.load_data("partitions")
            loader.load_data("_retry")
            core._get_internal_component("endpoint_resolver")
            core._get_internal_component("smart_defaults_factory")
            _freeze_models_once()
        load_ca_bundle(session)
    except Exception as error:
        log.debug("loading the %s models in advance failed: %s", ", ".join(services), error)


class ScoreAnswer(NamedTuple):
    """Placement scores (AZ ID -> (region, score)), or None: why, and whether refused."""

    scores: dict[str, tuple[str, int]] | None
    reason: str = ""
    # Every failed call was refused permission: the account's answer, which a second
    # question (other regions, the type list instead of requirements) would get too.
    refused: bool = False


class Ec2Queries:
    """The EC2 queries of one allocation, sharing a boto3 session and its clients.

    ``session`` is a ``boto3.Session`` (boto3's default one when None); its botocore
    loader parses each service model once for every client. A client is created by
    the first thread that asks for it, one at a time under a lock (sessions are not
    thread-safe), and then shared by every thread (clients are).
    """

    def __init__(self, session: Any = None, max_workers: int = 128) -> None:
        from botocore.config import Config

        # boto3's default session, with the process's one loader (each model parsed once
        # a process); a caller's session keeps its loader, reading files as dicts, and
        # gets what mapt shares process-wide (its CA bundle loaded once, among others).
        if session is None:
            session = default_aws_session()
        else:
            plain_json_loader(session._session.get_component("data_loader"))
            process_wide_sharing()
        self._session: Any = session
        retries = {"mode": "standard", "max_attempts": 5}
        ec2 = client_config(
            session,
            retries=retries,
            max_pool_connections=min(max_workers, EC2_CONNECTIONS_PER_CLIENT),
        )
        self._configs = {
            "ec2": ec2,
            "pricing": ec2.merge(Config(max_pool_connections=max_workers)),
        }
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.max_workers = max_workers

    def client(self, region: str, service: str = "ec2") -> Any:
        key = (service, region)
        found = self._clients.get(key)
        if found is not None:  # the common case needs no lock
            return found
        with self._lock:
            if key not in self._clients:
                # Frozen before the pause ends: a collection would scan the fresh model.
                with collection_paused():
                    self._clients[key] = self._session.client(
                        service, region_name=region, config=self._configs[service]
                    )
                    _freeze_models_once()
            return self._clients[key]

    def has_client(self, region: str, service: str = "ec2") -> bool:
        return (service, region) in self._clients

    def build_clients_until(self, regions: Iterable[str], done: Iterable[Future[Any]]) -> None:
        """Build the EC2 clients of ``regions``, in order, until every ``done`` is done.

        Called while round 1 waits on AWS, so that CPU is spent when it is idle; a
        region round 2 does not ask only costs a client (botocore has no cheaper way).
        """
        waited = list(done)
        for region in regions:
            if all(future.done() for future in waited):
                return
            self.client(region)

    def partition_regions(self, home: str) -> list[str]:
        """The EC2 regions of ``home``'s partition, from botocore's endpoint data."""
        partition = self._session.get_partition_for_region(home)
        return list(self._session.get_available_regions("ec2", partition_name=partition))

    def always_enabled_regions(self, home: str) -> list[str]:
        """``ALWAYS_ENABLED_REGIONS`` when ``home`` is in their (the aws) partition."""
        if self._session.get_partition_for_region(home) != "aws":
            return []
        return list(ALWAYS_ENABLED_REGIONS)

    def executor(self, jobs: int) -> ThreadPoolExecutor:
        """A thread pool for ``jobs`` concurrent queries (capped at ``max_workers``)."""
        return ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, jobs)))

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
        """Does DescribeImages find an image called ``name`` (glob) in ``region``?

        A lookup that fails raises AWS's verdict (``aws_error``): a region whose answer
        is unknown is not one without the image, so it is neither left out nor counted
        towards "the image is found nowhere".
        """
        filters = [{"Name": "name", "Values": [name]}]
        if arch:
            filters.append({"Name": "architecture", "Values": [arch]})
        kwargs: dict[str, Any] = {"Filters": filters}
        if owner:
            kwargs["Owners"] = [owner]
        with translating_aws_errors("DescribeImages", region=region):
            return bool(self.client(region).describe_images(**kwargs)["Images"])

    # -- placement scores -------------------------------------------------------------
    def placement_scores(
        self,
        instance_types: Sequence[str],
        regions: Sequence[str],
        ask_in: Sequence[str],
        otherwise: str = "ranking on price alone",
    ) -> dict[str, tuple[str, int]] | None:
        """``placement_score_answer`` of the types, a warning logged when it is None that
        says why and what the ranking does instead (``otherwise``)."""
        answer = self.placement_score_answer(instance_types, regions, ask_in)
        if answer.scores is None:
            warn_scores_unavailable(answer.reason, otherwise)
        return answer.scores

    def placement_score_answer(
        self,
        instance_types: Sequence[str],
        regions: Sequence[str],
        ask_in: Sequence[str],
        *,
        requirements: Mapping[str, Any] | None = None,
    ) -> ScoreAnswer:
        """AZ ID -> (region, score), or None with why and whether it was refused, from
        batched GetSpotPlacementScores calls, all pages.

        One call per ``SCORE_REGIONS_PER_CALL`` regions, all in parallel, each scoring
        every type, or, with ``requirements`` (an ``InstanceRequirementsWithMetadata``),
        every type they admit. A call is sent to the regions of ``ask_in`` in turn (at
        most ``SCORE_ATTEMPTS``), the next one only when the endpoint itself failed
        (5xx, an unparseable answer, a call it does not implement): a refusal or any
        other 4xx answer is the account's, the same everywhere. None when a call gets
        no answer, so the caller ranks without these scores; ``refused`` when every
        failed call was refused permission (``PERMISSION_ERROR_CODES``), which asking
        again, with other parameters, would not change. Bad credentials are raised.
        """
        scored: dict[str, Any] = (
            {"InstanceRequirementsWithMetadata": dict(requirements)}
            if requirements is not None
            else {"InstanceTypes": list(instance_types)}
        )
        answers = self.in_parallel(
            lambda batch: self._scores_of(scored, batch, ask_in), score_batches(regions)
        )
        failed = [answer for answer in answers if answer.scores is None]
        if failed:
            reasons = [answer.reason for answer in answers if answer.reason]
            return ScoreAnswer(
                None, "; ".join(dict.fromkeys(reasons)), all(a.refused for a in failed)
            )
        merged = {
            zone: entry
            for answer in answers
            if answer.scores
            for zone, entry in answer.scores.items()
        }
        return ScoreAnswer(merged)

    def _scores_of(
        self, scored: Mapping[str, Any], regions: Sequence[str], ask_in: Sequence[str]
    ) -> ScoreAnswer:
        """One batch of ``placement_scores``: its scores, or None and why calls failed."""
        reasons: list[str] = []
        for region in list(dict.fromkeys(ask_in))[:SCORE_ATTEMPTS]:
            paginator = self.client(region).get_paginator("get_spot_placement_scores")
            try:
                scores: dict[str, tuple[str, int]] = {}
                for page in paginator.paginate(
                    **scored,
                    TargetCapacity=1,
                    TargetCapacityUnitType="units",
                    SingleAvailabilityZone=True,
                    RegionNames=list(regions),
                ):
                    for entry in page.get("SpotPlacementScores", []):
                        zone_id = entry.get("AvailabilityZoneId")
                        if zone_id:
                            scores[zone_id] = (entry["Region"], int(entry["Score"]))
                return ScoreAnswer(scores, "; ".join(reasons))
            except Exception as error:
                if not (is_aws_error(error) or isinstance(error, NotImplementedError)):
                    raise
                failure = aws_error(error, call="GetSpotPlacementScores", region=region)
                if isinstance(failure, PrerequisiteError):
                    raise failure from error
                log.debug("%s", failure)
                reasons.append(failure.message)
                if aws_error_code(error) in PERMISSION_ERROR_CODES:
                    return ScoreAnswer(None, "; ".join(reasons), refused=True)
                if not _endpoint_fault(error):
                    break
        return ScoreAnswer(None, "; ".join(reasons))

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
        return [
            PricePoint(
                availability_zone=item["AvailabilityZone"],
                instance_type=item["InstanceType"],
                price=float(item["SpotPrice"]),
                timestamp=item["Timestamp"],
            )
            for item in self.spot_price_history(
                region, instance_types, product, now - timedelta(hours=1), now
            )
        ]

    def spot_price_history(
        self,
        region: str,
        instance_types: Sequence[str],
        product: str,
        start: datetime,
        end: datetime,
        availability_zone: str | None = None,
    ) -> list[dict[str, Any]]:
        """DescribeSpotPriceHistory's entries from ``start`` to ``end``, every page, as AWS
        answers them (newest first; the price in force at ``start`` included), with
        aware timestamps; in one AZ when ``availability_zone`` is given."""
        paginator = self.client(region).get_paginator("describe_spot_price_history")
        zone = {} if availability_zone is None else {"AvailabilityZone": availability_zone}
        with translating_aws_errors("DescribeSpotPriceHistory", region=region):
            return [
                {**item, "Timestamp": _aware(item["Timestamp"])}
                for page in paginator.paginate(
                    InstanceTypes=list(instance_types),
                    ProductDescriptions=[product],
                    StartTime=start,
                    EndTime=end,
                    **zone,
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
        self, instance_types: Iterable[str], product: str, regions: Iterable[str]
    ) -> dict[tuple[str, str], float] | None:
        """(region, type) -> on-demand USD/hour from the Pricing API, or None if it fails.

        Optional information: any failure (no permission, API not reachable) is logged
        at debug level and answered with None (``on_demand_price_list`` says why);
        credentials that are missing or invalid are raised, as there.
        """
        return self.on_demand_price_list(instance_types, product, regions)[0]

    def on_demand_price_list(
        self, instance_types: Iterable[str], product: str, regions: Iterable[str]
    ) -> tuple[dict[tuple[str, str], float] | None, str | None]:
        """``on_demand_prices`` and, when they are None, the reason in a few words.

        The types are priced in ``regions``, in parallel calls of at most
        ``PRICING_PAIRS_PER_CALL`` (type, region) pairs (``pricing_batches``), so no
        answer needs a second page. Credentials that are missing or invalid raise their
        ``PrerequisiteError`` (exit 5), as they would at the next call: they are not a
        price the Pricing API withholds, and granting it a permission would not help.
        """
        operating_system = _PRICING_OS.get(product)
        if operating_system is None:
            return None, f"the Pricing API does not price product {product!r}"
        fixed = {
            "operatingSystem": operating_system,
            "tenancy": "Shared",
            "preInstalledSw": "NA",
            "capacitystatus": "Used",
        }

        def prices_of(batch: tuple[list[str], list[str]]) -> dict[tuple[str, str], float]:
            types, batch_regions = batch
            filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fixed.items()]
            filters += [
                {"Type": "ANY_OF", "Field": "instanceType", "Value": ",".join(types)},
                {"Type": "ANY_OF", "Field": "regionCode", "Value": ",".join(batch_regions)},
            ]
            found: dict[tuple[str, str], float] = {}
            paginator = self.client(PRICING_REGION, "pricing").get_paginator("get_products")
            for page in paginator.paginate(ServiceCode="AmazonEC2", Filters=filters):
                for document in page.get("PriceList", []):
                    parsed = _on_demand_price(document)
                    if parsed is not None and parsed[1] in types:
                        found[(parsed[0], parsed[1])] = parsed[2]
            return found

        try:
            merged: dict[tuple[str, str], float] = {}
            batches = pricing_batches(sorted(set(instance_types)), sorted(set(regions)))
            for part in self.in_parallel(prices_of, batches):
                merged.update(part)
            return merged, None
        except Exception as error:
            if not (is_aws_error(error) or isinstance(error, NotImplementedError)):
                raise
            failure = aws_error(error, call="GetProducts")
            if isinstance(failure, PrerequisiteError):
                raise failure from error
            log.debug("on-demand prices unavailable: %s", failure)
            reason = aws_error_code(error) or type(error).__name__
            return None, f"the Pricing API did not answer ({reason})"


def score_batches(regions: Sequence[str]) -> list[list[str]]:
    """``regions`` in order, in GetSpotPlacementScores calls of ``SCORE_REGIONS_PER_CALL``."""
    return [
        list(regions[start : start + SCORE_REGIONS_PER_CALL])
        for start in range(0, len(regions), SCORE_REGIONS_PER_CALL)
    ]


def warn_scores_unavailable(reason: str, otherwise: str) -> None:
    """Say that placement scores could not be had, why, and what the ranking does instead."""
    log.warning("spot placement scores are unavailable (%s); %s", reason, otherwise)


def pricing_batches(
    instance_types: Sequence[str], regions: Sequence[str]
) -> list[tuple[list[str], list[str]]]:
    """(types, regions) of each GetProducts call: every pair once, each answer one page.

    The regions go in groups that fit a filter value, and each group's calls take as
    many types as keep the pairs within ``PRICING_PAIRS_PER_CALL``.
    """
    batches = []
    for group in _chunks(regions, PRICING_PAIRS_PER_CALL):
        per_call = max(1, PRICING_PAIRS_PER_CALL // len(group))
        batches += [(types, group) for types in _chunks(instance_types, per_call)]
    return batches


def _chunks(values: Sequence[str], most: int) -> list[list[str]]:
    """``values`` in order, in lists of at most ``most`` that join within a filter value."""
    chunks: list[list[str]] = []
    for value in values:
        last = chunks[-1] if chunks else None
        if (
            last is None
            or len(last) >= most
            or len(",".join([*last, value])) > (PRICING_VALUE_CHARS)
        ):
            chunks.append([value])
        else:
            last.append(value)
    return chunks


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile, in any thread, until the last pause ends.

    Building a client allocates thousands of objects (one method per operation, the
    endpoint rules) next to the parsed service model, a few hundred thousand objects
    that live as long as the process; a ranking builds one per region and parses as
    many answers. Collections triggered meanwhile would scan them, again and again as
    they age, for nothing: measured, they took a third of each client's CPU time. So a
    ranking pauses the collector from its first client to its last answer (pauses
    nest and may overlap across threads: the collector resumes when the last one
    ends), and the first client's model is moved out of the collector's sight for
    good (``gc.freeze``). Reference counting frees everything acyclic meanwhile.
    """
    global _pauses, _collecting_before
    with _pause_lock:
        if _pauses == 0:
            _collecting_before = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _collecting_before:
                gc.enable()


def _freeze_models_once() -> None:
    """``gc.freeze`` after the process's first client: its parsed model lives on."""
    global _models_frozen
    if not _models_frozen:
        _models_frozen = True
        gc.freeze()


_models_frozen = False
_pause_lock = threading.Lock()
_pauses = 0
_collecting_before = True


def _endpoint_fault(error: BaseException) -> bool:
    """Did the endpoint fail (so another region may answer), rather than refuse?"""
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return True  # unparseable answer, not implemented, connection failure
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500


def _on_demand_price(document: str | Mapping[str, Any]) -> tuple[str, str, float] | None:
    """(region, instance type, USD/hour) from one Pricing API product document."""
    product = json.loads(document) if isinstance(document, str) else document
    attributes = product.get("product", {}).get("attributes", {})
    region, instance_type = attributes.get("regionCode"), attributes.get("instanceType")
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if region and instance_type and usd is not None and float(usd) > 0:
                return region, instance_type, float(usd)
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
