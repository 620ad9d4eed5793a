"""``mapt aws sweep``: state from a real file backend, AWS from moto, output text or JSON."""

from __future__ import annotations

import gzip
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


def test_text_report_shows_a_tag_that_looks_like_markup_as_it_is(
    world: World, tmp_path: Path
) -> None:
    """A Name tag is anyone's text: an unclosed rich tag in it is printed, not parsed."""
    world.build("ghost", EAST, tags("ghost", Name="[/oops]"), full=False)
    backend = write_state(tmp_path, "lost", "kept", "expired")
    result = runner.invoke(app, ["aws", "sweep", "--regions", EAST, "--backed-url", backend])
    assert result.exit_code == 0, result.stderr
    ghost = world["ghost"].ids
    (row,) = [line for line in result.stdout.splitlines() if f" {ghost['vpc']} " in line]
    assert "[/oops]" in row and "deleted" in row
    assert not set(ghost.values()) & world.live_ids(EAST)


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
    (line,) = result.stderr.strip().splitlines()
    assert "has no stacks, so 7 mapt resources of project lost would count as orphaned" in line
    assert "--older-than DURATION (e.g. 1s)" in line
    assert not [c for c in aws.calls if c.operation.startswith(DELETES)]
    dry = runner.invoke(
        app, ["aws", "sweep", "--regions", WEST, "--backed-url", empty, "--dry-run"]
    )
    assert dry.exit_code == 0, dry.stderr
    assert "Would remove" in dry.stdout


def test_older_than_overrides_the_empty_backend_guard_after_saying_what_will_go(
    world: World, tmp_path: Path
) -> None:
    """The refusal's hint works: --older-than removes old resources, state or not."""
    empty = f"file://{tmp_path / 'nothing-here'}"
    args = ["aws", "sweep", "--regions", WEST, "--backed-url", empty, "--older-than", "1s"]
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.stderr
    lost = world["lost"].ids
    announced = [line for line in result.stderr.splitlines() if "has no stacks" in line]
    assert len(announced) == len(lost)
    for kind, resource_id in lost.items():
        (line,) = [line for line in announced if f" {resource_id} " in line]
        assert line.startswith(f"The state backend {empty} has no stacks; removing {kind} ")
        assert line.endswith("(project lost: no state, older than 1s)")
    assert not set(lost.values()) & world.live_ids(WEST)
    assert set(world["untagged"].ids.values()) <= world.live_ids(WEST)


# -- fail closed: state that cannot be read protects its project ---------------------------

TROUBLED = ("cut", "zst", "shape", "hidden")


def troubled_files(hidden: str) -> dict[str, bytes]:
    """Checkpoints of healthy, truncated, zstd, wrong-shaped and unreadable projects."""
    from tests.stacks.test_inventory import checkpoint, zstd

    def state(project: str) -> bytes:
        return checkpoint(project, f"host-{project}", {"region": WEST}, 9)

    return {
        ".pulumi/stacks/kept/host-kept.json": state("kept"),
        ".pulumi/stacks/expired/host-expired.json": state("expired"),
        ".pulumi/stacks/healthy/host-healthy.json": state("healthy"),
        ".pulumi/stacks/cut/host-cut.json.gz": gzip.compress(state("cut"))[:-10],
        ".pulumi/stacks/zst/host-zst.json.zst": zstd(state("zst")),
        ".pulumi/stacks/shape/host-shape.json": b'{"checkpoint": "x"}',
        hidden: state("hidden"),
    }


@pytest.fixture
def troubled(world: World) -> World:
    """Beside ``world``: a healthy project, four with troubled state, a true orphan."""
    for name in ("healthy", *TROUBLED, "orphan"):
        world.build(name, WEST, tags(name), full=False)
    return world


def check_fail_closed_sweep(
    outcome: tuple[int, str, str, set[str]], world: World, unreadable: dict[str, str]
) -> None:
    exit_code, stdout, stderr, left = outcome
    assert exit_code == 0, stderr
    assert "Traceback" not in stderr
    report = json.loads(stdout)
    assert {r["project"] for r in report["resources"]} == {"lost", "orphan"}
    for name in ("lost", "orphan"):
        assert not set(world[name].ids.values()) & left, name
    for name in ("kept", "expired", "untagged", "healthy", *TROUBLED):
        assert set(world[name].ids.values()) <= left, name
    found = {u["project"]: u["reason"] for u in report["unreadable_state"]}
    assert found.keys() == unreadable.keys()
    for project, reason in unreadable.items():
        assert reason in found[project], project


def sweep_json(backend: str, world: World) -> tuple[int, str, str, set[str]]:
    args = ["aws", "sweep", "--regions", f"{WEST},{EAST}", "--backed-url", backend]
    result = runner.invoke(app, [*args, "--output", "json"])
    return result.exit_code, result.stdout, result.stderr, world.live_ids(WEST, EAST)


def test_file_backend_sweep_never_deletes_a_project_whose_state_it_cannot_read(
    troubled: World, tmp_path: Path
) -> None:
    from tests.harness.privileges import without_dac_override
    from tests.stacks.test_inventory import write_files

    write_files(tmp_path, troubled_files(".pulumi/stacks/hidden/host-hidden.json"))
    hidden = tmp_path / ".pulumi/stacks/hidden"
    hidden.chmod(0)
    try:
        # As a process the folder's mode binds (root without DAC override).
        outcome = without_dac_override(lambda: sweep_json(f"file://{tmp_path}", troubled))
    finally:
        hidden.chmod(0o755)

    check_fail_closed_sweep(
        outcome,
        troubled,
        {
            "cut": "cannot decompress it",
            "shape": "not a Pulumi checkpoint",
            "hidden": "cannot list the folder: Permission denied",
        },
    )


def test_s3_backend_sweep_never_deletes_a_project_whose_state_it_cannot_read(
    troubled: World,
) -> None:
    s3 = boto3.client("s3", region_name=EAST)
    s3.create_bucket(Bucket="ci-state")
    hidden = ".pulumi/stacks/hidden/host-hidden.json"
    for key, data in troubled_files(hidden).items():
        # The hidden project's checkpoint is archived: S3 refuses to hand it out.
        storage = "GLACIER" if key == hidden else "STANDARD"
        s3.put_object(Bucket="ci-state", Key=f"ci/{key}", Body=data, StorageClass=storage)

    outcome = sweep_json(f"s3://ci-state/ci?region={EAST}", troubled)

    check_fail_closed_sweep(
        outcome,
        troubled,
        {
            "cut": "cannot decompress it",
            "shape": "not a Pulumi checkpoint",
            "hidden": "InvalidObjectState",
        },
    )


def test_text_output_names_the_projects_kept_for_unreadable_state(
    troubled: World, tmp_path: Path
) -> None:
    from tests.stacks.test_inventory import write_files

    write_files(tmp_path, troubled_files(".pulumi/stacks/hidden/host-hidden.json"))
    result = runner.invoke(
        app, ["aws", "sweep", "--regions", WEST, "--backed-url", f"file://{tmp_path}", "--dry-run"]
    )
    assert result.exit_code == 0, result.stderr
    kept = [line for line in result.stdout.splitlines() if line.startswith("Kept every")]
    assert [line.split()[5].rstrip(":") for line in kept] == ["cut", "shape"]
    assert f"{tmp_path}/.pulumi/stacks/shape/host-shape.json" in kept[1]


def test_an_unreadable_file_of_unknown_project_refuses_the_sweep_naming_it(
    world: World, tmp_path: Path, aws: ApiCallLog
) -> None:
    backend = write_state(tmp_path, "kept", "expired")
    (tmp_path / ".pulumi/stacks/host-legacy.json").write_bytes(b'{"checkpoint": "x"}')
    aws.calls.clear()
    result = runner.invoke(app, ["aws", "sweep", "--regions", WEST, "--backed-url", backend])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"Error: cannot tell which project the unreadable state file "
        f"{tmp_path}/.pulumi/stacks/host-legacy.json belongs to"
    )
    assert not [c for c in aws.calls if c.operation.startswith(DELETES)]


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_a_backend_that_cannot_be_listed_aborts_the_sweep(
    backend: str, world: World, tmp_path: Path, aws: ApiCallLog
) -> None:
    from tests.harness.privileges import without_dac_override

    aws.calls.clear()
    args = ["aws", "sweep", "--regions", WEST, "--backed-url"]
    if backend == "s3":
        result = runner.invoke(app, [*args, f"s3://never-created?region={EAST}"])
        outcome = (result.exit_code, result.stderr)
        named = "s3://never-created/.pulumi/stacks/"
    else:
        url = write_state(tmp_path, "kept")
        stacks = tmp_path / ".pulumi/stacks"
        stacks.chmod(0)

        def run() -> tuple[int, str]:
            result = runner.invoke(app, [*args, url])
            return result.exit_code, result.stderr

        try:
            outcome = without_dac_override(run)
        finally:
            stacks.chmod(0o755)
        named = f"cannot list the state in {stacks}: Permission denied"
    exit_code, stderr = outcome
    assert exit_code == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Error: ") and named in line
    if backend == "s3":
        assert not [c for c in aws.calls if c.operation.startswith(DELETES)]
    assert set(world["lost"].ids.values()) <= world.live_ids(WEST)


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
