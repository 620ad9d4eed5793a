"""``host list`` and the sweep's state reading on checkpoints the real CLI wrote.

Pulumi writes ``.pulumi/stacks/<project>/<stack>.json``, or ``.json.gz`` with
``PULUMI_DIY_BACKEND_GZIP=true``, or ``.json.zst`` with ``PULUMI_DIY_BACKEND_ZSTD=true``.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapt.allocation import AllocationResult
from mapt.allocation._spot_stack import spot_choice_program
from mapt.cli import app
from mapt.core import NoCapacityError
from mapt.stacks import PulumiEngine, StackRef, list_stacks
from tests.stacks.real_engine.conftest import RealCli, leftovers

CHOICE = AllocationResult(
    region="eu-north-1",
    availability_zone="eu-north-1b",
    availability_zone_id="eun1-az2",
    instance_types=("m6i.large", "m7i.large"),
    spot_price=0.0231,
    max_price=0.0277,
    score=9,
)


def engine() -> PulumiEngine:
    return PulumiEngine(progress_stream=io.StringIO(), live=False)


@pytest.mark.parametrize(
    ("variable", "suffix"),
    [
        (None, ".json"),
        ("PULUMI_DIY_BACKEND_GZIP", ".json.gz"),
        # Not written by 3.205 (it ignores the variable); seen on 3.276.
        pytest.param(
            "PULUMI_DIY_BACKEND_ZSTD", ".json.zst", marks=pytest.mark.pulumi_since("3.276.0")
        ),
    ],
    ids=["plain", "gzip", "zstd"],
)
def test_host_list_and_the_sweep_read_what_the_cli_wrote(
    real_cli: RealCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str | None,
    suffix: str,
) -> None:
    if variable:
        monkeypatch.setenv(variable, "true")
    state = tmp_path / "state"
    url = f"file://{state}"
    started = datetime.now(timezone.utc)
    engine().up(StackRef("demo", "spotOption", url), spot_choice_program(CHOICE))
    # A second project whose first up failed: Pulumi keeps the stack, with nothing in it.
    with pytest.raises(NoCapacityError):
        engine().up(StackRef("other", "host", url), failing)
    assert (state / f".pulumi/stacks/demo/spotOption-demo{suffix}").is_file()

    # The sweep keeps the resources of every project that has state.
    stacks = list_stacks(url)
    assert [(s.project, s.stack_name, s.resource_count) for s in stacks] == [
        ("demo", "spotOption-demo", 0),
        ("other", "host-other", 0),
    ]
    spot = stacks[0]
    assert spot.updated_at is not None
    assert started - timedelta(seconds=5) <= spot.updated_at <= datetime.now(timezone.utc)
    assert spot.outputs["instance_types"] == ["m6i.large", "m7i.large"]

    result = CliRunner().invoke(
        app, ["aws", "host", "list", "--backed-url", url, "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    hosts = {h["project"]: h for h in json.loads(result.stdout)["hosts"]}
    assert hosts["demo"]["region"] == "eu-north-1"
    assert hosts["demo"]["availability_zone"] == "eu-north-1b"
    assert hosts["demo"]["instance_types"] == ["m6i.large", "m7i.large"]
    assert hosts["demo"]["spot"] is True and hosts["demo"]["locked"] is False
    assert hosts["other"]["stacks"] == ["host-other"] and hosts["other"]["region"] is None
    assert leftovers(real_cli) == []


def failing() -> None:
    raise NoCapacityError("no spot capacity")
