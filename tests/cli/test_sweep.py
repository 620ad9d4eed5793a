"""``mapt aws sweep``: state from a real file backend, AWS from moto, output text or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.spot_market import ApiCallLog, _response, installed
from tests.targets.test_aws_sweep import EAST, WEST, World, stamp

runner = CliRunner()
DELETES = ("Delete", "Terminate", "Release", "Detach", "Disassociate")
# The sweep compares tags with the real clock: every resource here is a day old, and
# the expired one expired an hour ago.
CREATED = stamp(datetime.now(timezone.utc) - timedelta(days=1))
EXPIRED = stamp(datetime.now(timezone.utc) - timedelta(hours=1))


def write_state(root: Path, *projects: str) -> str:
    """A Pulumi file backend holding a host stack for each project; returns its URL."""
    for project in projects:
        stack = f"host-{project}"
        path = root / ".pulumi" / "stacks" / project / f"{stack}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoint = {"stack": stack, "latest": {"manifest": {}, "resources": []}}
        path.write_text(json.dumps({"version": 3, "checkpoint": checkpoint}))
    return f"file://{root}"


def tags(project: str | None, **extra: str) -> dict[str, str]:
    base = {"team": "qe"}
    if project is not None:
        base |= {"mapt:project": project, "mapt:created-at": CREATED}
    return base | extra


@pytest.fixture
def world(aws: ApiCallLog) -> Iterator[World]:
    """Only two regions enabled, so the default (every enabled region) stays small."""

    def two_regions(model: Any, **_: Any) -> Any:
        if model.name != "DescribeRegions":
            return None
        regions = [{"RegionName": r, "OptInStatus": "opt-in-not-required"} for r in (WEST, EAST)]
        return _response(200), {"Regions": regions}

    with installed([("before-call.ec2", two_regions)]):
        world = World(boto3.Session(region_name=EAST))
        world.build("lost", WEST, tags("lost"), full=False)
        world.build("kept", EAST, tags("kept"), full=False)
        world.build("expired", EAST, tags("expired", **{"mapt:expires-at": EXPIRED}), full=False)
        world.build("untagged", WEST, tags(None), full=False)
        yield world


def test_json_reports_the_orphans_it_removed_in_every_enabled_region(
    world: World, tmp_path: Path, aws: ApiCallLog
) -> None:
    backend = write_state(tmp_path, "kept", "expired")
    result = runner.invoke(app, ["aws", "sweep", "--backed-url", backend, "--output", "json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["regions"] == [WEST, EAST]  # sorted, from DescribeRegions
    assert (report["dry_run"], report["expired"], report["older_than"]) == (False, False, None)
    assert report["failed"] == 0
    lost = world["lost"].ids
    assert {(r["kind"], r["id"]) for r in report["resources"]} == set(lost.items())
    assert {r["status"] for r in report["resources"]} == {"deleted"}
    assert {tuple(r["reasons"]) for r in report["resources"]} == {("orphaned",)}
    assert report["resources"][-1] == {
        "region": WEST,
        "kind": "key-pair",
        "id": lost["key-pair"],
        "name": f"host-key-{lost['vpc']}",
        "project": "lost",
        "reasons": ["orphaned"],
        "status": "deleted",
        "error": None,
    }
    left = world.live_ids(WEST, EAST)
    assert not set(lost.values()) & left
    for name in ("kept", "expired", "untagged"):
        assert set(world[name].ids.values()) <= left, name


def test_expired_and_older_than_add_projects_that_have_state(world: World, tmp_path: Path) -> None:
    backend = write_state(tmp_path, "lost", "kept", "expired")
    args = ["aws", "sweep", "--regions", f"{EAST},{WEST}", "--backed-url", backend]
    result = runner.invoke(app, [*args, "--expired", "--output", "json"])
    assert result.exit_code == 0, result.stderr
    chosen = {(r["project"], tuple(r["reasons"])) for r in json.loads(result.stdout)["resources"]}
    assert chosen == {("expired", ("expired",))}
    result = runner.invoke(app, [*args, "--older-than", "6h", "--output", "json"])
    report = json.loads(result.stdout)
    assert report["older_than"] == "6h0m0s"
    assert {r["project"] for r in report["resources"]} == {"lost", "kept"}
    assert set(world["untagged"].ids.values()) <= world.live_ids(WEST)


def test_dry_run_prints_a_table_and_deletes_nothing(
    world: World, tmp_path: Path, aws: ApiCallLog
) -> None:
    backend = write_state(tmp_path, "kept", "expired")
    before = world.live_ids(WEST, EAST)
    aws.calls.clear()
    result = runner.invoke(
        app,
        ["aws", "sweep", "--dry-run", "--expired", "--backed-url", backend],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.stderr
    assert "Would remove: projects expired, lost (2 regions)" in result.stdout
    assert world["lost"].ids["vpc"] in result.stdout
    assert "no state" in result.stdout and f"expired {EXPIRED}" in result.stdout
    assert "would-delete" in result.stdout
    assert not [c for c in aws.calls if c.operation.startswith(DELETES)]
    assert world.live_ids(WEST, EAST) == before


def test_nothing_to_sweep_says_so(world: World, tmp_path: Path) -> None:
    backend = write_state(tmp_path, "lost", "kept", "expired")
    result = runner.invoke(app, ["aws", "sweep", "--regions", WEST, "--backed-url", backend])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "Nothing to sweep in 1 region."


def test_a_failed_deletion_exits_1_after_deleting_the_rest(world: World, tmp_path: Path) -> None:
    def deny_keys(model: Any, **_: Any) -> Any:
        if model.name != "DeleteKeyPair":
            return None
        error = {"Code": "UnauthorizedOperation", "Message": "You are not authorized."}
        return _response(403), {"Error": error}

    backend = write_state(tmp_path, "kept", "expired")
    with installed([("before-call.ec2", deny_keys)]):
        result = runner.invoke(
            app,
            ["aws", "sweep", "--regions", WEST, "--backed-url", backend, "--output", "json"],
        )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failed"] == 1
    statuses = {r["kind"]: (r["status"], r["error"]) for r in report["resources"]}
    assert statuses.pop("key-pair") == (
        "failed",
        "UnauthorizedOperation: You are not authorized.",
    )
    assert {status for status, _ in statuses.values()} == {"deleted"}
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    (line,) = errors
    assert line.startswith(f"Error: 1 of {len(report['resources'])} resources could not be deleted")
    assert world["lost"].ids["key-pair"] in line


def test_an_empty_backend_does_not_make_everything_an_orphan(
    world: World, tmp_path: Path, aws: ApiCallLog
) -> None:
    empty = f"file://{tmp_path / 'nothing-here'}"
    aws.calls.clear()
    result = runner.invoke(app, ["aws", "sweep", "--regions", WEST, "--backed-url", empty])
    assert result.exit_code == 2
    assert "has no stacks, so every mapt resource in the account would count as orphaned" in (
        result.stderr
    )
    assert not [c for c in aws.calls if c.operation.startswith(DELETES)]
    dry = runner.invoke(
        app, ["aws", "sweep", "--regions", WEST, "--backed-url", empty, "--dry-run"]
    )
    assert dry.exit_code == 0, dry.stderr
    assert "Would remove" in dry.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--regions", "eu-west-1,"], "--regions 'eu-west-1,' has an empty item"),
        (["--regions", "mars-north"], "--regions item 'mars-north' is not an AWS region"),
        (["--older-than", "2d"], "--older-than '2d' has an unknown unit 'd'"),
        (["--older-than", "-1h"], "--older-than '-1h' must be longer than zero"),
        (["--backed-url", "ftp://state"], "'ftp://state'"),
    ],
)
def test_bad_input_exits_2_naming_the_value_before_any_aws_call(
    args: list[str], named: str, aws: ApiCallLog, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["aws", "sweep", *args])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and named in line
    assert aws.calls == []


def test_older_than_reads_its_environment_variable(world: World, tmp_path: Path) -> None:
    backend = write_state(tmp_path, "lost", "kept", "expired")
    result = runner.invoke(
        app,
        ["aws", "sweep", "--regions", EAST, "--backed-url", backend, "--output", "json"],
        env={"MAPT_OLDER_THAN": "90m"},
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["older_than"] == "1h30m0s"
