"""``mapt aws host costs`` without a server: a CLI host priced from its state.

The host stack's checkpoint (written as Pulumi writes it) records the placement, the OS
and the creation time; the prices come through boto3 from ``tests.harness.price_history``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mapt.cli import app
from tests.costs.scenario import TYPE, ZONE, at, history
from tests.harness.spot_market import installed
from tests.stacks.test_inventory import checkpoint, write_files

runner = CliRunner()
OUTPUTS = {
    "region": "us-east-1",
    "availability_zone": ZONE,
    "instance_types": [TYPE],
    "spot": True,
    "os": "fedora",
    "created_at": "2026-11-20T10:00:00Z",
    "host": "203.0.113.7",
}


def _state(tmp_path: Path, outputs: dict[str, Any]) -> str:
    write_files(
        tmp_path,
        {".pulumi/stacks/pr-7/host-pr-7.json": checkpoint("pr-7", "host-pr-7", outputs, 12)},
    )
    return f"file://{tmp_path}"


def _costs(backend: str, *extra: str) -> Any:
    market = history()
    market.changes = [change for change in market.changes if change.at != at(17)]
    with installed(market.handlers()):
        return runner.invoke(
            app, ["aws", "host", "costs", "--project-name", "pr-7", "--backed-url", backend, *extra]
        )


def test_a_named_spot_host_without_a_load_balancer_lists_none(
    aws_env: None, tmp_path: Path
) -> None:
    # A spot host with a name of its own records the instance its name points at.
    named = {**OUTPUTS, "instance_id": "i-0123456789abcdef0", "dns_name": "pr-7.ci.example.com"}
    result = _costs(_state(tmp_path, named), "--start", "2026-11-20", "--end", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    assert "$0.5138 on spot against $1.3440 on demand over 14 hours" in result.stdout
    assert "network_load_balancer" not in result.stdout
    assert "public_ipv4: $0.0700 at list price" in result.stdout  # one address, 14 h


def test_a_cli_host_is_priced_from_its_state_since_its_creation(
    aws_env: None, tmp_path: Path
) -> None:
    result = _costs(_state(tmp_path, OUTPUTS), "--start", "2026-11-20", "--end", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    assert "$0.5138 on spot against $1.3440 on demand over 14 hours: 61.7746% saved" in (
        result.stdout
    )
    assert "network_load_balancer: $0.3150 at list price" in result.stdout
    # By hand, 10:00 to midnight: 1 h x 0.04 + 1.75 h x 0.05 + 1.5 h x 0.03 + 9.75 h x 0.035.
    result = _costs(
        _state(tmp_path, OUTPUTS),
        "--start",
        "2026-11-20",
        "--end",
        "2026-11-20",
        "--output",
        "json",
    )
    document = json.loads(result.stdout)
    assert {key: document[key] for key in ("costs", "running", "savings")} == {
        "costs": {"actual": 0.5138, "potential": 1.344},
        "running": {"unit": "hours", "value": 14.0},
        "savings": {"unit": "percentage", "value": 61.7746},
    }


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({k: v for k, v in OUTPUTS.items() if k != "created_at"}, "records no created_at"),
        ({**OUTPUTS, "os": "beos"}, "records no a known OS"),
    ],
)
def test_state_that_does_not_say_is_an_error_not_zero(
    aws_env: None, tmp_path: Path, outputs: dict[str, Any], message: str
) -> None:
    result = _costs(_state(tmp_path, outputs))
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: the costs of project 'pr-7' are unknown") and message in line


def test_an_unreadable_state_is_an_error_not_zero(aws_env: None, tmp_path: Path) -> None:
    write_files(tmp_path, {".pulumi/stacks/pr-7/host-pr-7.json": b"{not json"})
    result = _costs(f"file://{tmp_path}")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the costs of project 'pr-7' are unknown")


@pytest.mark.parametrize(
    ("flags", "named"),
    [(("--start", "2026-11-31"), "--start"), (("--end", "tomorrow"), "--end")],
)
def test_bad_days_exit_2_naming_the_flag(
    aws_env: None, tmp_path: Path, flags: tuple[str, ...], named: str
) -> None:
    result = _costs(_state(tmp_path, OUTPUTS), *flags)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {named} must be a day as YYYY-MM-DD")
