"""Generate ``tests/data/spot-market.csv.gz``: a seeded, synthetic AWS spot market.

The tests that rank spot offers need per-AZ spot prices and per-region on-demand
prices (moto serves neither). This script makes them from a seed, so a fresh clone
runs every test with no outside data. Regenerate after changing anything below with::

    python -m tests.harness.make_market            # writes tests/data/spot-market.csv.gz
    python -m tests.harness.make_market --check    # exit 1 if the committed file differs

Shape (the columns and quirks of the SkyPilot catalog's ``vms.csv``, which the optional
real-data test in ``tests/test_market_data.py`` reads from ``../shared`` when present):

- Columns ``InstanceType, AcceleratorName, AcceleratorCount, vCPUs, MemoryGiB, GpuInfo,
  Price, SpotPrice, Region, AvailabilityZone``; one row per (instance type, AZ ID), rows
  sorted by type then region then AZ ID. Accelerator columns are empty (CPU families).
- ``FAMILIES``: the 22 CPU families of the real snapshot, with every size and its shape
  (vCPUs; GiB per vCPU, or GiB per size for the burstable t3/t3a).
- ``REGIONS``: 22 regions with their real AZ IDs and the families each lacks (newer
  families are not everywhere, as on AWS). A family that is not ``core`` misses one
  AZ of a region by chance (``AZ_GAP_CHANCE``); every size of a family has the same AZs.
- On-demand ``Price``: the family's us-east-1 price per vCPU (per GiB for t3/t3a) times
  the size, times the region's multiplier; the same in every AZ of a region. These
  are summary figures (list prices, median regional ratios), not copied rows.
- ``SpotPrice``: on-demand x a discount drawn per (family, AZ) from N(0.34, 0.09),
  x a per-type factor from a log-normal (sigma 0.12), kept in [0.1, 1.0] of on-demand,
  six decimals. So AZs differ, and sizes of a family are nearly, not exactly, linear.
- Quirks kept from the real market: a few rows have no spot price (``EMPTY_SPOT_NAMED``,
  ``m6i.large`` in usw2-az4, a type tests ask for, and ``EMPTY_SPOT_DRAWN`` more), and
  one metal row's spot price is slightly above on-demand (``ABOVE_ON_DEMAND``).

The output is deterministic for a seed: draws use only ``random.Random.random()``
(see ``Draws``), so the CSV text is the same on every Python version and platform,
and the gzip header carries no name or time.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
SEED = 20261121
FIXTURE = Path(__file__).resolve().parents[1] / "data" / "spot-market.csv.gz"
COLUMNS = (
    "InstanceType",
    "AcceleratorName",
    "AcceleratorCount",
    "vCPUs",
    "MemoryGiB",
    "GpuInfo",
    "Price",
    "SpotPrice",
    "Region",
    "AvailabilityZone",
)

# Sizes -> vCPUs; "NxLarge" is 4N vCPUs. Metal sizes name their vCPUs ("metal:96").
_NAMED_VCPUS = {"medium": 1, "large": 2, "xlarge": 4}


@dataclass(frozen=True)
class Family:
    """One instance family: its sizes, memory per vCPU and us-east-1 on-demand price."""

    sizes: str  # "large xlarge ... metal:96"; burstable sizes "nano:2:0.5" (vCPUs:GiB)
    gib_per_vcpu: float  # 0 for burstable families, whose sizes give their memory
    usd_per_unit: float  # per vCPU-hour, or per GiB-hour when gib_per_vcpu is 0
    core: bool = False  # offered in every AZ of its regions; others may miss one


_BURSTABLE = "nano:2:0.5 micro:2:1 small:2:2 medium:2:4 large:2:8 xlarge:4:16 2xlarge:8:32"
_STD = "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge"
_INTEL6 = _STD + " 24xlarge 32xlarge metal:128"
_AMD6 = _STD + " 24xlarge 32xlarge 48xlarge metal:192"
_INTEL7 = _STD + " 24xlarge metal-24xl:96 48xlarge metal-48xl:192"
_AMD7 = "medium " + _STD + " 24xlarge 32xlarge 48xlarge metal-48xl:192"
_GRAVITON = "medium large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge metal:64"
_C5 = "large xlarge 2xlarge 4xlarge 9xlarge 12xlarge 18xlarge 24xlarge metal:96"
_GEN5 = "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge metal:96"

FAMILIES: dict[str, Family] = {
    "c5": Family(_C5, 2, 0.0425, core=True),
    "c6a": Family(_AMD6, 2, 0.03825),
    "c6i": Family(_INTEL6, 2, 0.0425, core=True),
    "c7g": Family(_GRAVITON, 2, 0.03625),
    "c7i": Family(_INTEL7, 2, 0.04462),
    "m5": Family(_GEN5, 4, 0.048, core=True),
    "m6a": Family(_AMD6, 4, 0.0432),
    "m6g": Family(_GRAVITON, 4, 0.0385, core=True),
    "m6i": Family(_INTEL6, 4, 0.048, core=True),
    "m7a": Family(_AMD7, 4, 0.05796),
    "m7g": Family(_GRAVITON, 4, 0.0408),
    "m7i": Family(_INTEL7, 4, 0.0504),
    "r5": Family(_GEN5, 8, 0.063, core=True),
    "r5a": Family(_STD + " 24xlarge", 8, 0.0565),
    "r6a": Family(_AMD6, 8, 0.0567),
    "r6i": Family(_INTEL6, 8, 0.063, core=True),
    "r7a": Family(_AMD7, 8, 0.07608),
    "r7g": Family(_GRAVITON, 8, 0.05355),
    "r7i": Family(_INTEL7, 8, 0.06615),
    "t3": Family(_BURSTABLE, 0, 0.0104, core=True),
    "t3a": Family(_BURSTABLE, 0, 0.0094),
    "z1d": Family("large xlarge 2xlarge 3xlarge 6xlarge 12xlarge metal:48", 8, 0.093),
}


@dataclass(frozen=True)
class Region:
    """A region's AZ IDs, on-demand price multiplier (us-east-1 = 1), families it lacks."""

    az_ids: tuple[str, ...]
    multiplier: float
    absent: str = ""  # family names, space-separated


# Families the smaller regions lack: the AMD ones, then the newest Intel and niche ones.
_NEW = "c6a m6a r6a m7a r7a"
_SMALL = " c7i m7i r7i r5a t3a z1d"


def _azs(prefix: str, *numbers: int) -> tuple[str, ...]:
    return tuple(f"{prefix}-az{n}" for n in numbers)


REGIONS: dict[str, Region] = {
    "af-south-1": Region(_azs("afs1", 1, 2, 3), 1.333, _NEW + " c7g m7g r7g" + _SMALL),
    "ap-east-1": Region(_azs("ape1", 1, 2, 3), 1.325, "m6a r6a m7a r7a m7g" + _SMALL),
    "ap-northeast-1": Region(_azs("apne1", 1, 2, 4), 1.259),
    "ap-northeast-2": Region(_azs("apne2", 1, 2, 3, 4), 1.206, _NEW),
    "ap-northeast-3": Region(_azs("apne3", 1, 2, 3), 1.259, _NEW + " c7i m7i r5a t3a z1d"),
    "ap-south-1": Region(_azs("aps1", 1, 2, 3), 1.0, "m7a r7a"),
    "ap-southeast-1": Region(_azs("apse1", 1, 2, 3), 1.206, "m7a r7a"),
    "ap-southeast-2": Region(_azs("apse2", 1, 2, 3), 1.25, "r7a"),
    "ap-southeast-3": Region(_azs("apse3", 1, 2, 3), 1.247, _NEW + " c6i r6i c7g c7i r5a t3a z1d"),
    "ca-central-1": Region(_azs("cac1", 1, 2, 4), 1.095, "m7a r7a z1d"),
    "eu-central-1": Region(_azs("euc1", 1, 2, 3), 1.198),
    "eu-north-1": Region(_azs("eun1", 1, 2, 3), 1.063, "c6a m6a r6a r5a t3a z1d"),
    "eu-south-1": Region(_azs("eus1", 1, 2, 3), 1.175, "c6a r6a m7a r7a m7g c7i m7i z1d"),
    "eu-west-1": Region(_azs("euw1", 1, 2, 3), 1.115),
    "eu-west-2": Region(_azs("euw2", 1, 2, 3), 1.175, "r6a m7a r7a"),
    "eu-west-3": Region(_azs("euw3", 1, 2, 3), 1.175, "c6a r6a m7a r7a z1d"),
    "me-central-1": Region(_azs("mec1", 1, 2, 3), 1.229, _NEW + " c6i c7g" + _SMALL),
    "me-south-1": Region(_azs("mes1", 1, 2, 3), 1.231, _NEW + " c7g" + _SMALL),
    "us-east-1": Region(_azs("use1", 1, 2, 4, 5, 6), 1.0),
    "us-east-2": Region(_azs("use2", 1, 2, 3), 1.0),
    "us-west-1": Region(_azs("usw1", 1, 3), 1.167, "m7a r7a"),
    "us-west-2": Region(_azs("usw2", 1, 2, 3, 4), 1.0),
}

AZ_GAP_CHANCE = 0.08  # a family that is not core misses one AZ of a region
DISCOUNT_MEAN, DISCOUNT_SD = 0.34, 0.09  # spot / on-demand, per (family, AZ)
TYPE_SIGMA = 0.12  # log-normal spread of one type around its family's discount
FLOOR, CEILING = 0.1, 1.0
EMPTY_SPOT_DRAWN = 6  # rows, besides the named one, with no spot price
EMPTY_SPOT_NAMED = ("m6i.large", "usw2-az4")  # a type tests ask for, unpriced in one AZ
ABOVE_ON_DEMAND = 1.00003  # one metal row's spot price sits just above on-demand


class Draws:
    """Seeded draws built on ``random.Random.random()`` alone.

    Python keeps that method's sequence for a seed across versions; ``gauss``,
    ``choice`` and ``sample`` may change, which would change the committed market.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def random(self) -> float:
        return self._rng.random()

    def index(self, size: int) -> int:
        return min(int(self._rng.random() * size), size - 1)

    def choice(self, items: Sequence[T]) -> T:
        return items[self.index(len(items))]

    def normal(self, mean: float, sd: float) -> float:
        """Box-Muller: one normal draw from two uniform ones."""
        radius = math.sqrt(-2.0 * math.log(1.0 - self._rng.random()))
        return mean + sd * radius * math.cos(2.0 * math.pi * self._rng.random())

    def sample(self, size: int, count: int) -> list[int]:
        """``count`` distinct indexes below ``size`` (a partial Fisher-Yates shuffle)."""
        pool = list(range(size))
        for i in range(count):
            j = i + self.index(size - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:count]


@dataclass(frozen=True)
class Shape:
    instance_type: str
    vcpus: int
    memory_gib: float


def shapes(family_name: str) -> list[Shape]:
    """Every size of a family with its vCPUs and memory."""
    family = FAMILIES[family_name]
    found = []
    for spec in family.sizes.split():
        size, *numbers = spec.split(":")
        if family.gib_per_vcpu == 0:
            vcpus, memory = int(numbers[0]), float(numbers[1])
        else:
            if numbers:
                vcpus = int(numbers[0])
            elif size in _NAMED_VCPUS:
                vcpus = _NAMED_VCPUS[size]
            else:
                vcpus = 4 * int(size.removesuffix("xlarge"))
            memory = vcpus * family.gib_per_vcpu
        found.append(Shape(f"{family_name}.{size}", vcpus, memory))
    return found


def on_demand_usd(family_name: str, shape: Shape, region: Region) -> float:
    family = FAMILIES[family_name]
    units = shape.memory_gib if family.gib_per_vcpu == 0 else shape.vcpus
    return round(family.usd_per_unit * units * region.multiplier, 5)


def generate(seed: int = SEED) -> str:
    """The market as CSV text (see the module docstring for its shape)."""
    rng = Draws(seed)
    offered: list[tuple[str, str, tuple[str, ...]]] = []  # (family, region, AZ IDs)
    for region_name, region in REGIONS.items():
        for family_name, family in FAMILIES.items():
            if family_name in region.absent.split():
                continue
            zones = region.az_ids
            if not family.core and len(zones) > 2 and rng.random() < AZ_GAP_CHANCE:
                missing = rng.choice(zones)
                zones = tuple(z for z in zones if z != missing)
            offered.append((family_name, region_name, zones))

    rows: list[list[str]] = []
    for family_name, region_name, zones in offered:
        region = REGIONS[region_name]
        discounts = {z: rng.normal(DISCOUNT_MEAN, DISCOUNT_SD) for z in zones}
        for shape in shapes(family_name):
            price = on_demand_usd(family_name, shape, region)
            for zone in zones:
                factor = math.exp(rng.normal(0, TYPE_SIGMA))
                ratio = min(CEILING, max(FLOOR, discounts[zone] * factor))
                rows.append(
                    [
                        shape.instance_type,
                        "",
                        "",
                        f"{float(shape.vcpus):.1f}",
                        f"{shape.memory_gib:.1f}",
                        "",
                        f"{price:.5f}".rstrip("0").rstrip("."),
                        f"{price * ratio:.6f}",
                        region_name,
                        zone,
                    ]
                )
    rows.sort(key=lambda row: (row[0], row[8], row[9]))

    named = next(i for i, row in enumerate(rows) if (row[0], row[9]) == EMPTY_SPOT_NAMED)
    for index in [named, *rng.sample(len(rows), EMPTY_SPOT_DRAWN)]:
        rows[index][7] = ""
    metal = [i for i, row in enumerate(rows) if ".metal" in row[0] and row[7]]
    above = rows[rng.choice(metal)]
    above[7] = f"{float(above[6]) * ABOVE_ON_DEMAND:.6f}"

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return text.getvalue()


def compress(text: str) -> bytes:
    """gzip with no file name or time in the header, so equal text gives equal bytes."""
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--output", type=Path, default=FIXTURE)
    parser.add_argument(
        "--check", action="store_true", help="compare with --output instead of writing it"
    )
    options = parser.parse_args(argv)
    text = generate(options.seed)
    if options.check:
        current = gzip.decompress(options.output.read_bytes()).decode()
        if current != text:
            print(f"{options.output} differs from seed {options.seed}", file=sys.stderr)
            return 1
        return 0
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_bytes(compress(text))
    print(f"wrote {options.output} ({text.count(chr(10)) - 1} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
