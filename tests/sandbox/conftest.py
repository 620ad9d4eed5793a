"""The sandbox end to end: the CLI in-process, AWS as a ``moto_server`` on loopback.

``moto_server`` runs in its own process on a free 127.0.0.1 port, started once per
session with moto's strict validation (instance types, AMIs) and the images mapt looks
up (RHEL, Fedora, Windows Server, Amazon Linux for the bastion) loaded from
``docs/sandbox-amis.json`` through ``MOTO_AMIS_PATH``, as docs/sandbox.md starts it;
it is reset before each test.
The CLI reaches it through ``AWS_ENDPOINT_URL``, as a user's shell would. Only what
moto does not implement (placement scores, spot price history) is answered in the
test process by the replayed market (``SpotMarket``).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKE_CREDENTIALS
from tests.harness import moto_reset
from tests.harness.moto_server import moto_server
from tests.harness.rsa_keys import reuse_within_process
from tests.harness.spot_market import ApiCallLog, SpotMarket, _response, installed

REPO_ROOT = Path(__file__).resolve().parents[2]
# The images a user's moto_server is started with (docs/sandbox.md): RHEL, Fedora,
# Windows Server and Amazon Linux, under their publishers' accounts.
SANDBOX_AMIS = REPO_ROOT / "docs" / "sandbox-amis.json"
# Scores for a few AZs the replayed market prices; the allocation picks among them.
SCORED = {"use1-az4": 9, "eun1-az1": 9, "aps1-az1": 8, "usw2-az1": 7}
# Regions the account has enabled: keeps the scan (and the sweep) to what is scored.
REGIONS = ("us-east-1", "eu-north-1", "ap-south-1", "us-west-2")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free loopback port, strict as AWS about inputs."""
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
        "MOTO_ENABLE_AMI_VALIDATION": "true",
        "MOTO_AMIS_PATH": str(SANDBOX_AMIS),
        "PYTHONPATH": str(REPO_ROOT),  # the script imports tests.harness
    }
    program = [sys.executable, str(Path(moto_reset.__file__))]  # reset before each test
    with moto_server(env, program=program) as endpoint:
        yield endpoint


@pytest.fixture
def endpoint(
    moto_endpoint: str,
    aws_env: None,
    market_rows: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[ApiCallLog]:
    """The reset server as the CLI's AWS, the market in front of it; yields the call log."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "default-state"))
    for name in ("MAPT_PROJECT_NAME", "MAPT_BACKED_URL", "MAPT_BACKEND_URL", "GITHUB_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL"):
        monkeypatch.delenv(name, raising=False)
    # Spot prices for every image's product (the replayed table prices one).
    products = ("Linux/UNIX", "Red Hat Enterprise Linux", "Windows")
    market = SpotMarket(rows=market_rows, scores=dict(SCORED), products=products)

    def enabled_regions(model: Any, **_: Any) -> Any:
        if model.name != "DescribeRegions":
            return None
        regions = [{"RegionName": r, "OptInStatus": "opt-in-not-required"} for r in REGIONS]
        return _response(200), {"Regions": regions}

    reuse_within_process(monkeypatch)  # real RSA keys, distinct within a test (speed)
    calls = ApiCallLog()
    with installed([*calls.handlers(), *market.handlers(), ("before-call.ec2", enabled_regions)]):
        yield calls
