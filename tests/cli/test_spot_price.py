"""``mapt aws spot-price``: read-only ranking as a table or JSON; bad input is exit 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.spot_market import ApiCallLog, SpotMarket

runner = CliRunner()
BASE = [
    "aws",
    "spot-price",
    "--cpus",
    "2",
    "--memory",
    "8",
    "--compute-families",
    "m5,m6a,m6i,m7a,m7i,t3,t3a",
]
WRITES = ("Create", "Delete", "Run", "Put", "Register", "Modify", "Associate", "Allocate")


@pytest.fixture
def market(spot_market: SpotMarket) -> SpotMarket:
    spot_market.scores = {"use1-az4": 9, "eun1-az1": 9, "aps1-az1": 8, "usw2-az1": 7}
    return spot_market


def test_json_lists_offers_best_first_with_documented_keys(
    market: SpotMarket, aws: ApiCallLog
) -> None:
    result = runner.invoke(app, [*BASE, "--output", "json"])
    assert result.exit_code == 0, result.stderr
    offers = json.loads(result.stdout)["offers"]
    assert offers
    keys = {
        "region",
        "availability_zone",
        "availability_zone_id",
        "instance_types",
        "spot_price",
        "max_price",
        "score",
    }
    assert all(keys <= set(o) for o in offers)
    assert [o["spot_price"] for o in offers] == sorted(o["spot_price"] for o in offers)
    best = offers[0]
    prices = [
        float(market.row(t, best["availability_zone_id"]).spot_price or "nan")
        for t in best["instance_types"]
    ]
    assert prices == sorted(prices) and best["spot_price"] == max(prices)
    assert best["on_demand_price"] > best["spot_price"] and 0 < best["saving_percent"] < 100
    # Read-only: no call that writes anything.
    assert not [c for c in aws.calls if c.operation.startswith(WRITES)]


def test_table_shows_the_offers(market: SpotMarket) -> None:
    result = runner.invoke(app, [*BASE], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "Spot offers, best first" in result.stdout
    assert "saving" in result.stdout and "us-east-1" in result.stdout


def test_flags_can_come_from_the_environment(market: SpotMarket) -> None:
    env = {
        "MAPT_CPUS": "2",
        "MAPT_MEMORY": "8",
        "MAPT_COMPUTE_FAMILIES": "m5,m6i,t3",
        "MAPT_SPOT_EVICTION_TOLERANCE": "high",
    }
    result = runner.invoke(app, ["aws", "spot-price", "--output", "json"], env=env)
    assert result.exit_code == 0, result.stderr
    offers = json.loads(result.stdout)["offers"]
    assert {t.split(".")[0] for o in offers for t in o["instance_types"]} <= {"m5", "m6i", "t3"}


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--cpus", "0"], "cpus 0"),
        (["--cpus", "-4"], "cpus -4"),
        (["--cpus", "many"], "'many'"),
        (["--memory", "0"], "memory 0"),
        (["--memory", "lots"], "'lots'"),
        (["--arch", "sparc64"], "'sparc64'"),
        (["--spot-eviction-tolerance", "extreme"], "'extreme'"),
        (["--spot-increase-rate", "-5"], "-5"),
        (["--spot-excluded-regions", "xx-fake-9"], "'xx-fake-9'"),
        (["--compute-sizes", ""], "--compute-sizes ''"),
        (["--compute-sizes", "m5.large,,t3.large"], "'m5.large,,t3.large'"),
        (["--output", "yaml"], "'yaml'"),
        # Loose values: meaningless, and refused like any other bad value.
        (["--gpu-manufacturer", ""], "--gpu-manufacturer ''"),
        (["--region", ""], "--region ''"),
        (["--product-description", ""], "--product-description ''"),
        (["--cpus", "٤"], "'٤'"),
        (["--cpus", "1_0"], "'1_0'"),
        (["--cpus", "9" * 5000], "…' is not a whole number"),
        (["--memory", "inf"], "'inf'"),
        (["--spot-increase-rate", "1e308"], "spot increase rate 1e+308"),
        # Beyond any EC2 type, refused with the bound (1e308 GiB overflowed the MiB).
        (["--memory", "1e308"], "memory 1e+308 GiB is more than 65536 GiB"),
        (["--memory", "65537"], "memory 65537.0 GiB is more than 65536 GiB"),
        (["--cpus", "9" * 30], "is more than 4096"),
        (["--gpus", "17"], "gpus 17 is more than 16"),
        (["--spot-increase-rate", "nan"], "'nan'"),
        # One validation with host create: the same mutual exclusion, region names.
        (["--compute-sizes", "m5.large", "--cpus", "4"], "--compute-sizes 'm5.large'"),
        (["--compute-sizes", "m5.large", "--memory", "16"], "--memory"),
        (["--region", "../../etc"], "--region '../../etc'"),
        (["--region", "us-east-99x"], "--region 'us-east-99x'"),
        (["--spot-excluded-regions", "us-east-1,../x"], "'../x'"),
    ],
)
def test_bad_input_is_one_line_exit_2_naming_the_value(
    market: SpotMarket, flags: list[str], named: str
) -> None:
    result = runner.invoke(app, ["aws", "spot-price", *flags])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert named in lines[0]
    assert result.stdout == ""


def test_no_capacity_is_exit_4(market: SpotMarket) -> None:
    market.scores = {"use1-az4": 2}
    result = runner.invoke(app, [*BASE])
    assert result.exit_code == 4
    assert "score >= 7" in result.stderr


def test_spot_price_builds_one_ec2_client_class(
    market: SpotMarket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its AWS session is mapt's, as ``host create``'s is: each region's client reuses
    the first one's class, which botocore built again for every client (830 methods,
    most of a further EC2 client's 14 ms), and its TLS connections share one loaded CA
    bundle."""
    from tests.harness.boto import botocore_as_shipped, record_class_builds

    botocore_as_shipped(monkeypatch.setattr)
    built = record_class_builds(monkeypatch.setattr)
    result = runner.invoke(app, [*BASE, "--output", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["offers"]
    assert built.count("ec2") == 1


def test_spot_price_takes_two_rounds_with_on_demand_prices(market: SpotMarket) -> None:
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    from tests.harness.rounds import ROUND_LATENCY, CallTimeline
    from tests.harness.spot_market import installed

    kept = {"us-east-1", "eu-north-1", "ap-south-1", "us-west-2"}
    excluded = ",".join(r.name for r in RegionsAndZonesBackend.regions if r.name not in kept)
    timeline = CallTimeline(latency=ROUND_LATENCY, services=("ec2", "pricing"))
    with installed(timeline.handlers()):
        result = runner.invoke(
            app, [*BASE, "--spot-excluded-regions", excluded, "--output", "json"]
        )
    assert result.exit_code == 0, result.output
    offers = json.loads(result.stdout)["offers"]
    assert offers and all("on_demand_price" in offer for offer in offers)
    assert timeline.count("pricing") >= 1 and timeline.rounds() <= 2
