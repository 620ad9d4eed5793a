"""The committed spot market: made by its seeded generator, shaped like the real one.

The same shape checks run on the real snapshot in ``../shared`` (``$MAPT_SHARED_DIR``)
when it is there; that is the suite's one optional check, skipped in a plain clone.
"""

from __future__ import annotations

import gzip
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from tests.harness import make_market
from tests.harness.skips import optional_data
from tests.harness.spot_market import MARKET_CSV, VMS_CSV, MarketRow, load_rows, moto_zone_names

# What the tests ask the market for: 2 vCPU / 8 GiB x86_64 families, in scored regions.
TESTED_FAMILIES = ("m5", "m6a", "m6i", "m7a", "m7i", "t3", "t3a")
TESTED_REGIONS = ("us-east-1", "eu-north-1", "ap-south-1", "us-west-2", "eu-west-1")


@pytest.fixture(scope="module")
def seeded() -> str:
    return make_market.generate(make_market.SEED)


def test_the_committed_market_is_what_the_seeded_generator_makes(seeded: str) -> None:
    committed = gzip.decompress(MARKET_CSV.read_bytes()).decode()
    assert committed == seeded, (
        "tests/data/spot-market.csv.gz was not made by tests/harness/make_market.py: "
        "run python -m tests.harness.make_market"
    )
    assert len(MARKET_CSV.read_bytes()) < 300_000  # small enough to keep in git


def test_another_seed_makes_another_market_of_the_same_header(seeded: str) -> None:
    text = make_market.generate(7)
    assert text != seeded
    assert text.splitlines()[0] == seeded.splitlines()[0] == ",".join(make_market.COLUMNS)


def _family(row: MarketRow) -> str:
    return row.instance_type.split(".", 1)[0]


def check_market_shape(rows: list[MarketRow]) -> None:
    """The properties of the real market that the selection code relies on."""
    assert len(rows) > 1000
    known_zones = moto_zone_names()
    assert {row.az_id for row in rows} <= set(known_zones)

    prices: dict[tuple[str, str], set[float]] = defaultdict(set)
    zones: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    per_unit: dict[tuple[str, str], set[float]] = defaultdict(set)
    for row in rows:
        assert known_zones[row.az_id][0] == row.region
        prices[(row.instance_type, row.region)].add(row.on_demand_price)
        zones[(_family(row), row.region)][row.instance_type].add(row.az_id)
        units = row.memory_gib if _family(row) in ("t3", "t3a") else row.vcpus
        per_unit[(_family(row), row.region)].add(round(row.on_demand_price / units, 4))

    # One on-demand price per type and region; the same AZs for every size of a family;
    # the price per vCPU (per GiB for burstable types) the same across a family's sizes.
    assert all(len(found) == 1 for found in prices.values())
    assert all(len({frozenset(s) for s in by_type.values()}) == 1 for by_type in zones.values())
    spread = [max(found) / min(found) for found in per_unit.values()]
    assert max(spread) < 1.01

    priced = [row for row in rows if row.spot_price is not None]
    unpriced = len(rows) - len(priced)
    assert 0 < unpriced < len(rows) / 500  # a few types have no spot price in some AZ
    ratios = [float(row.spot_price or 0) / row.on_demand_price for row in priced]
    above = [ratio for ratio in ratios if ratio > 1]
    assert len(above) <= 1 and all(ratio < 1.001 for ratio in above)
    assert min(ratios) >= 0.09 and 0.25 < statistics.median(ratios) < 0.45
    # Spot prices differ between the AZs of a region, so the AZ choice matters.
    m5_large = [row.spot_price for row in priced if row.instance_type == "m5.large"]
    assert len(m5_large) > 40 and len(set(m5_large)) > len(m5_large) / 2

    offered = {(_family(row), row.region) for row in rows}
    for region in TESTED_REGIONS:
        assert {family for family in TESTED_FAMILIES if (family, region) in offered} >= {
            "m5",
            "m6i",
            "m7i",
            "t3",
        }


def real_rows() -> list[MarketRow]:
    optional_data(VMS_CSV)
    return load_rows(VMS_CSV)


@pytest.mark.parametrize("source", ["generated", "real"])
def test_the_market_has_the_shape_the_selection_relies_on(
    source: str, market_rows: list[MarketRow]
) -> None:
    check_market_shape(market_rows if source == "generated" else real_rows())


def test_the_loader_reads_plain_and_gzipped_csv(tmp_path: Path) -> None:
    text = make_market.generate(3)
    plain = tmp_path / "market.csv"
    plain.write_text(text)
    packed = tmp_path / "market.csv.gz"
    packed.write_bytes(make_market.compress(text))
    assert load_rows(plain) == load_rows(packed)
    assert len(load_rows(plain)) == text.count("\n") - 1
