"""Pure selection and ranking: from EC2 facts to ranked offers, with no I/O.

Everything here takes plain data (what DescribeInstanceTypes, GetSpotPlacementScores
and DescribeSpotPriceHistory returned) and returns plain data, so the whole algorithm
of ``specs/concepts/allocation.md`` is testable, and property-testable, without a
cloud.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mapt.allocation._errors import NoEligibleOfferError
from mapt.allocation._models import ComputeRequest, Offer

# An AZ must price this many of the requested types (or all, when fewer are requested)
# to be eligible: enough for the Auto Scaling group to fall back between types.
TYPES_PER_OFFER = 8
MAX_OFFERS = 10


@dataclass(frozen=True)
class InstanceTypeInfo:
    """The facts about an instance type that selection looks at."""

    name: str
    vcpus: int
    memory_mib: int
    architectures: tuple[str, ...]
    bare_metal: bool
    gpu_manufacturers: tuple[str, ...]
    gpu_count: int
    has_accelerator: bool
    usage_classes: tuple[str, ...]

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> InstanceTypeInfo:
        """Build from one ``DescribeInstanceTypes`` entry."""
        gpus = item.get("GpuInfo", {}).get("Gpus", [])
        return cls(
            name=item["InstanceType"],
            vcpus=int(item["VCpuInfo"]["DefaultVCpus"]),
            memory_mib=int(item["MemoryInfo"]["SizeInMiB"]),
            architectures=tuple(item["ProcessorInfo"]["SupportedArchitectures"]),
            bare_metal=bool(item.get("BareMetal", False)),
            gpu_manufacturers=tuple(str(g.get("Manufacturer", "")).lower() for g in gpus),
            gpu_count=sum(int(g.get("Count", 0)) for g in gpus),
            has_accelerator=bool(
                gpus
                or item.get("InferenceAcceleratorInfo")
                or item.get("FpgaInfo")
                or item.get("NeuronInfo")
                or item.get("MediaAcceleratorInfo")
            ),
            usage_classes=tuple(item.get("SupportedUsageClasses", ())),
        )

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


def in_families(name: str, families: Sequence[str]) -> bool:
    """True when ``name`` is ``<family>.<size>`` for one of ``families`` (no prefix games)."""
    return not families or name.split(".", 1)[0] in families


def matches(info: InstanceTypeInfo, request: ComputeRequest, spot: bool) -> bool:
    """Does this type satisfy the request (ignoring ``compute_sizes``)?"""
    if request.arch not in info.architectures:
        return False
    if spot and info.usage_classes and "spot" not in info.usage_classes:
        return False
    if not in_families(info.name, request.compute_families):
        return False
    if request.nested_virt:
        return info.bare_metal
    if request.gpu_manufacturer:
        return (
            request.gpu_manufacturer in info.gpu_manufacturers
            and info.vcpus >= request.cpus
            and info.gpu_count >= request.gpus
        )
    if request.gpus:
        return info.gpu_count >= request.gpus and info.vcpus >= request.cpus
    return (
        not info.has_accelerator
        and info.vcpus == request.cpus
        and info.memory_mib == round(request.memory_gib * 1024)
    )


# No spot price protection: by default AWS's attribute-based selection applies "optimal
# price protection"; its documented "no threshold" value keeps every matching type, as
# a list of the types would. Given as MaxSpotPriceAsPercentageOfOptimalOnDemandPrice,
# the one spot threshold the EC2 model does not document as unsupported for
# GetSpotPlacementScores (SpotMaxPricePercentageOverLowestPrice and
# OnDemandMaxPricePercentageOverLowestPrice are).
NO_PRICE_PROTECTION = 999999
# AllowedInstanceTypes takes at most 400 patterns (the EC2 API model's limit).
_MOST_ALLOWED_TYPES = 400


def score_requirements(request: ComputeRequest) -> dict[str, Any] | None:
    """GetSpotPlacementScores' ``InstanceRequirementsWithMetadata`` for ``request``.

    The requirements admit exactly the types that ``matches`` accepts (section 1 of
    the spec), so the scores can be asked before DescribeInstanceTypes has answered.
    None where no requirement says the same: named types, and GPU requests, since a
    fractional GPU (``g6f``: an eighth of an L4, reported with a count of 0) is a GPU
    to ``matches`` and AWS does not document how ``AcceleratorCount`` counts it. Those
    are scored with the list of types, once it is known. A type without accelerators
    is one with neither an accelerator nor accelerator memory, true under either way
    of counting a fractional GPU.
    """
    if (
        request.compute_sizes
        or request.gpu_manufacturer
        or request.gpus
        or len(request.compute_families) > _MOST_ALLOWED_TYPES
    ):
        return None
    requirements: dict[str, Any] = {
        "BareMetal": "included",
        "BurstablePerformance": "included",
        "InstanceGenerations": ["current", "previous"],
        "MaxSpotPriceAsPercentageOfOptimalOnDemandPrice": NO_PRICE_PROTECTION,
    }
    if request.nested_virt:
        requirements.update(VCpuCount={"Min": 0}, MemoryMiB={"Min": 0}, BareMetal="required")
    else:
        memory_mib = round(request.memory_gib * 1024)
        requirements.update(
            VCpuCount={"Min": request.cpus, "Max": request.cpus},
            MemoryMiB={"Min": memory_mib, "Max": memory_mib},
            AcceleratorCount={"Max": 0},
            AcceleratorTotalMemoryMiB={"Max": 0},
        )
    if request.compute_families:
        families = request.compute_families
        requirements["AllowedInstanceTypes"] = [f"{family}.*" for family in families]
    return {"ArchitectureTypes": [request.arch], "InstanceRequirements": requirements}


def select_instance_types(
    infos: Iterable[InstanceTypeInfo], request: ComputeRequest, spot: bool
) -> list[str]:
    """Every matching type name, sorted by name: the ranking sees them all."""
    return sorted({info.name for info in infos if matches(info, request, spot)})


def nearest_sizes(
    infos: Iterable[InstanceTypeInfo], request: ComputeRequest, count: int = 5
) -> list[str]:
    """Shapes close to the request that do exist, as ``"<cpus> vCPU / <mem> GiB"``.

    Used to make a no-match error actionable: distance is the relative difference in
    vCPUs plus the relative difference in memory.
    """
    shapes = {
        (info.vcpus, info.memory_gib)
        for info in infos
        if request.arch in info.architectures
        and in_families(info.name, request.compute_families)
        and not info.has_accelerator
    }

    def distance(shape: tuple[int, float]) -> float:
        cpus, memory = shape
        return abs(cpus - request.cpus) / request.cpus + abs(memory - request.memory_gib) / (
            request.memory_gib
        )

    ranked = sorted(shapes, key=lambda shape: (distance(shape), shape))
    return [f"{cpus} vCPU / {memory:g} GiB" for cpus, memory in ranked[:count]]


@dataclass(frozen=True)
class PricePoint:
    """One DescribeSpotPriceHistory entry."""

    availability_zone: str
    instance_type: str
    price: float
    timestamp: datetime


def newest_prices(points: Iterable[PricePoint]) -> dict[tuple[str, str], float]:
    """For each (AZ name, type), the price of the newest point.

    AWS returns history newest first, but pages and regions are merged here, so the
    newest is found by timestamp, not by position.
    """
    newest: dict[tuple[str, str], PricePoint] = {}
    for point in points:
        key = (point.availability_zone, point.instance_type)
        current = newest.get(key)
        if current is None or point.timestamp > current.timestamp:
            newest[key] = point
    return {key: point.price for key, point in newest.items()}


@dataclass(frozen=True)
class Zone:
    """An availability zone as this account names it."""

    region: str
    name: str
    zone_id: str


def types_needed(instance_types: Sequence[str]) -> int:
    """How many of the requested types an AZ must price to be eligible."""
    return min(len(instance_types), TYPES_PER_OFFER)


def max_price(spot_price: float, increase_rate: float) -> float:
    """The bid ceiling: the spot price raised by ``increase_rate`` percent."""
    return round(spot_price * (1 + increase_rate / 100), 6)


def zone_offer(
    zone: Zone,
    prices: Mapping[str, float],
    instance_types: Sequence[str],
    score: int | None,
    increase_rate: float,
) -> Offer | None:
    """The offer of one AZ, or None when it prices too few of the requested types.

    ``prices`` maps type -> newest price in this AZ. The offer holds the ``n`` cheapest
    requested types (ties by name), cheapest first; its spot price is the highest of
    those ``n`` prices, the bid that covers every one of them.
    """
    requested = set(instance_types)
    priced = sorted(
        ((price, name) for name, price in prices.items() if name in requested),
    )
    needed = types_needed(instance_types)
    if len(priced) < needed or needed == 0:
        return None
    chosen = priced[:needed]
    spot_price = chosen[-1][0]
    return Offer(
        region=zone.region,
        availability_zone=zone.name,
        availability_zone_id=zone.zone_id,
        instance_types=tuple(name for _, name in chosen),
        spot_price=spot_price,
        max_price=max_price(spot_price, increase_rate),
        score=score,
    )


def rank_key(offer: Offer) -> tuple[float, int, str, str]:
    """Cheapest first; then higher score; then region and AZ name for determinism."""
    return (
        offer.spot_price if offer.spot_price is not None else float("inf"),
        -(offer.score or 0),
        offer.region,
        offer.availability_zone,
    )


def rank_offers(
    zones: Iterable[Zone],
    prices: Mapping[tuple[str, str], float],
    scores: Mapping[str, int] | None,
    instance_types: Sequence[str],
    min_score: int,
    increase_rate: float,
    unscored_regions: Collection[str] = (),
    *,
    pinned: str | None = None,
) -> list[Offer]:
    """Every eligible AZ's offer, best first, at most ``MAX_OFFERS``.

    ``prices`` maps (AZ name, type) -> newest price; ``scores`` maps AZ ID -> score,
    or is None when placement scores could not be had (then every AZ with prices is
    eligible and scores are unknown). The AZs of ``unscored_regions`` (whose scores
    alone failed) are eligible with an unknown score too. The offer of the ``pinned``
    AZ (a name), when it is eligible, goes first, the others following in rank order:
    before the cut to ``MAX_OFFERS``, so a pinned zone ranked lower is not lost.
    Raises ``NoEligibleOfferError`` explaining the best near miss when no AZ is
    eligible.
    """
    by_zone: dict[str, dict[str, float]] = {}
    for (zone_name, instance_type), price in prices.items():
        by_zone.setdefault(zone_name, {})[instance_type] = price
    offers = []
    zone_list = list(zones)
    for zone in zone_list:
        score = None if scores is None else scores.get(zone.zone_id)
        scored = scores is not None and zone.region not in unscored_regions
        if scored and (score is None or score < min_score):
            continue
        offer = zone_offer(zone, by_zone.get(zone.name, {}), instance_types, score, increase_rate)
        if offer is not None:
            offers.append(offer)
    if not offers:
        raise NoEligibleOfferError(
            _explain_no_offer(zone_list, by_zone, scores, instance_types, min_score),
            hint="Raise --spot-eviction-tolerance, widen the compute request, "
            "or drop --spot-excluded-regions.",
        )
    ranked = sorted(offers, key=lambda offer: (offer.availability_zone != pinned, rank_key(offer)))
    return ranked[:MAX_OFFERS]


def _explain_no_offer(
    zones: Sequence[Zone],
    by_zone: Mapping[str, Mapping[str, float]],
    scores: Mapping[str, int] | None,
    instance_types: Sequence[str],
    min_score: int,
) -> str:
    needed = types_needed(instance_types)
    requested = set(instance_types)
    if scores is None:
        head = f"no availability zone prices {needed} of the {len(instance_types)} types"
    else:
        head = (
            f"no availability zone with placement score >= {min_score} prices "
            f"{needed} of the {len(instance_types)} types"
        )

    def near_miss(zone: Zone) -> tuple[int, int]:
        priced = len(requested & set(by_zone.get(zone.name, {})))
        score = 0 if scores is None else scores.get(zone.zone_id, 0)
        return (min(priced, needed), score)

    if not zones:
        return head + "; no availability zone was found in the candidate regions"
    best = max(zones, key=lambda zone: (*near_miss(zone), zone.name))
    priced, _ = near_miss(best)
    detail = f"best AZ found: {best.name} pricing {priced}"
    if scores is not None:
        known = scores.get(best.zone_id)
        detail += f", score {known}" if known is not None else ", no score"
    return f"{head}; {detail}"
