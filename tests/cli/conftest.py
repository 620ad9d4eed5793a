"""Fixtures of the CLI tests: the replayed market with images, and the host CLI harness."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.host_harness import FEDORA_41, FEDORA_OWNER, SCORED, Harness
from tests.harness.images import publish_image
from tests.harness.spot_market import SpotMarket

# Where the CLI tests' Fedora image is published.
IMAGE_REGIONS = ("us-east-1", "eu-north-1", "ap-south-1", "us-west-2")


@pytest.fixture
def enabled_regions() -> frozenset[str]:
    """The image's regions and two without it (left out of the ranking for that).

    The CLI tests check what a command does with the market, not how many regions it
    scans: the allocation tests (``tests/allocation``) scan them all.
    """
    return frozenset({*IMAGE_REGIONS, "eu-west-1", "ap-northeast-1"})


@pytest.fixture
def market(spot_market: SpotMarket) -> SpotMarket:
    spot_market.scores = dict(SCORED)
    for region in IMAGE_REGIONS:
        publish_image(region, FEDORA_41, FEDORA_OWNER)
    return spot_market


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "default-state"))
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    for name in ("MAPT_PROJECT_NAME", "MAPT_BACKED_URL", "MAPT_BACKEND_URL"):
        monkeypatch.delenv(name, raising=False)
    return Harness(tmp_path)
