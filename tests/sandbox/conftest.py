"""The sandbox end to end: the CLI in-process, AWS as a ``moto_server`` on loopback.

``moto_server`` runs in its own process on a free 127.0.0.1 port, started once per
session with moto's strict validation (instance types, AMIs) and the images mapt looks
up (RHEL, Fedora, Windows Server, Amazon Linux for the bastion) loaded through
``MOTO_AMIS_PATH``, as a user's server would hold them; it is reset before each test.
The CLI reaches it through ``AWS_ENDPOINT_URL``, as a user's shell would. Only what
moto does not implement (placement scores, spot price history) is answered in the
test process by the replayed market (``SpotMarket``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKE_CREDENTIALS
from tests.harness.spot_market import ApiCallLog, SpotMarket, _response, installed

FEDORA_OWNER = "125523088429"
RHEL_OWNER = "309956199498"
AMAZON_OWNER = "137112412989"
IMAGES = (
    ("ami-0f1e2d3c4b5a69788", "Fedora-Cloud-Base-AmazonEC2.x86_64-41-20261001.0", FEDORA_OWNER, None),
    ("ami-0a1b2c3d4e5f60718", "RHEL-9.4.0_HVM-20261001-x86_64-0-Hourly2-GP3", RHEL_OWNER, None),
    ("ami-0c2d3e4f5a6b70819", "Windows_Server-2022-English-Full-Base-2026.10.01", AMAZON_OWNER, "windows"),
    ("ami-0d3e4f5a6b7c8091a", "al2023-ami-2023.6.20261001.0-kernel-6.1-x86_64", AMAZON_OWNER, None),
)
# Scores for a few AZs the replayed market prices; the allocation picks among them.
SCORED = {"use1-az4": 9, "eun1-az1": 9}
# Regions the account has enabled: keeps the scan (and the sweep) to what is scored.
REGIONS = ("us-east-1", "eu-north-1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _images_file(folder: Path) -> Path:
    path = folder / "amis.json"
    path.write_text(
        json.dumps(
            [
                {
                    "ami_id": ami_id,
                    "name": name,
                    "owner_id": owner,
                    "public": True,
                    "state": "available",
                    "architecture": "x86_64",
                    "root_device_name": "/dev/sda1",
                    "root_device_type": "ebs",
                    "virtualization_type": "hvm",
                    "image_type": "machine",
                    "creation_date": "2026-10-01T00:00:00.000Z",
                    **({"platform": platform} if platform else {}),
                }
                for ami_id, name, owner, platform in IMAGES
            ]
        )
    )
    return path


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on a free loopback port, strict as AWS about inputs."""
    port = _free_port()
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
        "MOTO_ENABLE_AMI_VALIDATION": "true",
        "MOTO_AMIS_PATH": str(_images_file(tmp_path_factory.mktemp("moto"))),
    }
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {endpoint}") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


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
    market = SpotMarket(rows=market_rows, scores=dict(SCORED))

    def enabled_regions(model: Any, **_: Any) -> Any:
        if model.name != "DescribeRegions":
            return None
        regions = [{"RegionName": r, "OptInStatus": "opt-in-not-required"} for r in REGIONS]
        return _response(200), {"Regions": regions}

    calls = ApiCallLog()
    with installed([*calls.handlers(), *market.handlers(), ("before-call.ec2", enabled_regions)]):
        yield calls
