"""The allocation's data: what is asked for (requests) and what is chosen (offers).

Plain frozen dataclasses with no I/O, validated on construction, so a bad request
fails with an ``InputError`` naming the bad value (and, as its ``field``, the field it
was given for) before any AWS call is made.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mapt.core import InputError, check_region_name, shown

ARCHITECTURES = ("x86_64", "arm64")
GPU_MANUFACTURERS = ("nvidia", "amd", "habana", "xilinx")

# Minimum placement score (1-10) per eviction tolerance: the less eviction a user
# tolerates, the more likely the capacity must be.
TOLERANCE_MIN_SCORE: Mapping[str, int] = {
    "lowest": 7,
    "low": 5,
    "medium": 3,
    "high": 2,
    "highest": 1,
}
DEFAULT_INCREASE_RATE = 30.0
# The highest bid margin, in percent: ten times the price is already no limit at all.
MAX_INCREASE_RATE = 1000.0
# The largest shape asked for: twice the most any EC2 instance type has (1,920 vCPUs on
# u7inh-32tb.480xlarge, 32 TiB of memory on the u7in-32tb types, 8 GPUs on p5.48xlarge
# and g4dn.metal), so types AWS adds later still fit. More is a typo (64000 for 64) or
# a number like 1e308, refused before any AWS call: EC2's filters take the memory in
# MiB as a whole number, which 1e308 GiB has none of (it overflowed).
MAX_CPUS = 4096
MAX_MEMORY_GIB = 65536
MAX_GPUS = 16
# Instance type names: family (letters, digits, dashes) dot size, e.g. m7i-flex.large.
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9-]+")
_FAMILY = re.compile(r"[a-z][a-z0-9-]*")


def _positive(name: str, value: float, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} {value!r} must be a number", field=field)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} {value!r} must be greater than zero", field=field)


def _at_most(name: str, value: float, maximum: int, field: str, unit: str = "") -> None:
    if value > maximum:
        raise InputError(
            f"{name} {shown(value)}{unit} is more than {maximum}{unit}, "
            "twice what the largest EC2 instance type has",
            field=field,
        )


@dataclass(frozen=True)
class ComputeRequest:
    """The machine asked for: either a shape (cpus, memory, arch, ...) or explicit types.

    ``compute_sizes`` names instance types outright and overrides the shape;
    ``compute_families`` keeps only types of those families (``m5`` keeps ``m5.large``,
    not ``m5a.large``). ``nested_virt`` asks for bare-metal types; ``gpu_manufacturer``
    for GPU types of that manufacturer with at least ``cpus`` vCPUs. ``arch`` None means
    "not asked for": x86_64 for a shape, the named types' own for ``compute_sizes``
    (``allocation.resolve_architecture`` finds it).
    """

    cpus: int = 8
    memory_gib: float = 64
    arch: str | None = None
    gpus: int = 0
    gpu_manufacturer: str | None = None
    nested_virt: bool = False
    compute_sizes: tuple[str, ...] = ()
    compute_families: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _positive("cpus", self.cpus, "cpus")
        if int(self.cpus) != self.cpus:
            raise InputError(f"cpus {self.cpus!r} must be a whole number", field="cpus")
        # A whole float (4.0, from JSON or a library caller) is that int: AWS's filters
        # take "4", not "4.0", and the score request an integer VCpuCount.
        object.__setattr__(self, "cpus", int(self.cpus))
        _at_most("cpus", self.cpus, MAX_CPUS, "cpus")
        _positive("memory", self.memory_gib, "memory_gib")
        _at_most("memory", self.memory_gib, MAX_MEMORY_GIB, "memory_gib", " GiB")
        if self.arch is None and not self.compute_sizes:
            object.__setattr__(self, "arch", ARCHITECTURES[0])
        if self.arch is not None and self.arch not in ARCHITECTURES:
            raise InputError(
                f"architecture {shown(self.arch)} is not supported: "
                f"use one of {', '.join(ARCHITECTURES)}",
                field="arch",
            )
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            raise InputError(
                f"gpus {self.gpus!r} must be a whole number, zero or more", field="gpus"
            )
        _at_most("gpus", self.gpus, MAX_GPUS, "gpus")
        if self.gpu_manufacturer is not None and self.gpu_manufacturer not in GPU_MANUFACTURERS:
            raise InputError(
                f"GPU manufacturer {shown(self.gpu_manufacturer)} is not supported: "
                f"use one of {', '.join(GPU_MANUFACTURERS)}",
                field="gpu_manufacturer",
            )
        object.__setattr__(self, "compute_sizes", tuple(self.compute_sizes))
        object.__setattr__(self, "compute_families", tuple(self.compute_families))
        for size in self.compute_sizes:
            if not _INSTANCE_TYPE.fullmatch(size):
                raise InputError(
                    f"compute size {shown(size)} is not an instance type name",
                    field="compute_sizes",
                )
        for family in self.compute_families:
            if not _FAMILY.fullmatch(family):
                raise InputError(
                    f"compute family {shown(family)} is not an instance family name",
                    field="compute_families",
                )


@dataclass(frozen=True)
class SpotArgs:
    """How spot capacity is chosen: eviction tolerance, bid margin, regions to avoid."""

    tolerance: str = "lowest"
    increase_rate: float = DEFAULT_INCREASE_RATE
    excluded_regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.tolerance not in TOLERANCE_MIN_SCORE:
            raise InputError(
                f"spot eviction tolerance {shown(self.tolerance)} is not one of "
                f"{', '.join(TOLERANCE_MIN_SCORE)}",
                field="tolerance",
            )
        rate = self.increase_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
            raise InputError(f"spot increase rate {rate!r} must be a number", field="increase_rate")
        if not 0 <= rate <= MAX_INCREASE_RATE:
            raise InputError(
                f"spot increase rate {rate!r} must be a percentage from 0 to {MAX_INCREASE_RATE:g}",
                field="increase_rate",
            )
        object.__setattr__(self, "excluded_regions", tuple(self.excluded_regions))
        for region in self.excluded_regions:
            check_region_name(region, "excluded region")

    @property
    def min_score(self) -> int:
        """The lowest placement score an AZ may have to be chosen."""
        return TOLERANCE_MIN_SCORE[self.tolerance]


@dataclass(frozen=True)
class AllocationArgs:
    """Everything ``allocation()`` needs besides the run context.

    ``spot`` None means on-demand. ``ami_*`` restrict spot regions to those where the
    image exists. ``session`` is the boto3 session to query with (default: a new one
    from the environment). ``availability_zone`` pins the machine to one zone (a pool
    spreading its members): on demand it runs there or nowhere; on spot the best offer
    in that zone goes first and the others stay its failover candidates.
    """

    compute_request: ComputeRequest
    prefix: str = "main"
    ami_product_description: str = "Linux/UNIX"
    ami_name: str | None = None
    ami_owner: str | None = None
    ami_arch: str | None = None
    spot: SpotArgs | None = None
    session: Any = None
    availability_zone: str | None = None


@dataclass(frozen=True)
class Offer:
    """One place a machine can run: region and AZ, the types to launch, and the price.

    ``spot_price`` is the bid covering every listed type (the highest of their prices
    in that AZ), ``max_price`` that bid raised by the increase rate; both None on
    demand. ``score`` is the AZ's placement score, None when it is unknown.
    """

    region: str
    availability_zone: str
    availability_zone_id: str
    instance_types: tuple[str, ...]
    spot_price: float | None
    max_price: float | None
    score: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, not tuples)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(Offer)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Offer:
        """The inverse of ``to_dict``; raises ``KeyError``/``TypeError``/``ValueError``."""
        return cls(**_offer_kwargs(data))


@dataclass(frozen=True)
class FailedOffer:
    """An offer a host was deployed on and could not launch, and AWS's reason."""

    offer: Offer
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.offer.to_dict(), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailedOffer:
        return cls(offer=Offer.from_dict(data), reason=str(data["reason"]))


@dataclass(frozen=True)
class AllocationResult(Offer):
    """The chosen offer plus the ranked runner-up offers, best first, for failover.

    ``failed`` lists the offers tried before this one that could not launch, oldest
    first; ``next_offer`` moves the choice along ``candidates`` after a failure.
    """

    candidates: tuple[Offer, ...] = field(default=())
    failed: tuple[FailedOffer, ...] = field(default=())

    @property
    def is_spot(self) -> bool:
        return self.spot_price is not None

    @property
    def offer(self) -> Offer:
        """The chosen offer alone."""
        return Offer(**{f.name: getattr(self, f.name) for f in fields(Offer)})

    def next_offer(
        self, reason: str, *, avoid_regions: Sequence[str] = ()
    ) -> AllocationResult | None:
        """The runner-up, with this offer recorded as failed; None when none is left.

        Candidates in ``avoid_regions`` are dropped (a region spot should leave).
        """
        remaining = [c for c in self.candidates if c.region not in avoid_regions]
        if not remaining:
            return None
        best, *rest = remaining
        failed = (*self.failed, FailedOffer(self.offer, reason))
        return AllocationResult(**vars(best), candidates=tuple(rest), failed=failed)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["candidates"] = [c.to_dict() for c in self.candidates]
        data["failed"] = [f.to_dict() for f in self.failed]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AllocationResult:
        candidates = tuple(Offer.from_dict(c) for c in data.get("candidates") or ())
        failed = tuple(FailedOffer.from_dict(f) for f in data.get("failed") or ())
        return cls(**_offer_kwargs(data), candidates=candidates, failed=failed)


def _offer_kwargs(data: Mapping[str, Any]) -> dict[str, Any]:
    types = data["instance_types"]
    if isinstance(types, str) or not isinstance(types, Sequence) or not types:
        raise TypeError(f"instance_types must be a non-empty list, got {types!r}")
    return {
        "region": _text(data, "region"),
        "availability_zone": _text(data, "availability_zone"),
        "availability_zone_id": _text(data, "availability_zone_id"),
        "instance_types": tuple(str(t) for t in types),
        "spot_price": _optional_float(data.get("spot_price")),
        "max_price": _optional_float(data.get("max_price")),
        "score": None if data.get("score") is None else int(data["score"]),
    }


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
