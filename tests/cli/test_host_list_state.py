"""``mapt aws host list`` on state it cannot fully read: every project listed, exit 0.

The backends hold a healthy project, a zstd checkpoint, a truncated ``.json.gz``, a
checkpoint of the wrong shape and a project whose state is hidden (a folder of mode
000 on a file backend, an archived object on S3). Listing reads state only: no
Pulumi import, no AWS call but the backend's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
from typer.testing import CliRunner

from mapt.cli import app
from tests.cli.test_sweep import troubled_files
from tests.harness.privileges import without_dac_override
from tests.harness.rounds import ROUND_LATENCY, CallTimeline, counting_clients
from tests.harness.spot_market import ApiCallLog, installed
from tests.stacks.test_inventory import checkpoint, write_files
from tests.targets.test_aws_sweep import EAST, WEST

runner = CliRunner()
HIDDEN = ".pulumi/stacks/hidden/host-hidden.json"
UNREADABLE = {
    "cut": "cannot decompress it",
    "shape": "not a Pulumi checkpoint: the document.checkpoint is a str",
}


def host_list(backend: str, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["aws", "host", "list", "--backed-url", backend, *extra])
    return result.exit_code, result.stdout, result.stderr


def check_listed(outcome: tuple[int, str, str], hidden_reason: str, location: str) -> None:
    exit_code, stdout, stderr = outcome
    assert exit_code == 0, stderr
    assert "Traceback" not in stderr
    hosts = {h["project"]: h for h in json.loads(stdout)["hosts"]}
    assert set(hosts) == {"kept", "expired", "healthy", "zst", "cut", "shape", "hidden"}
    for name in ("kept", "expired", "healthy", "zst"):
        assert (hosts[name]["region"], hosts[name]["unreadable"]) == (WEST, []), name
    expected = {**UNREADABLE, "hidden": hidden_reason}
    for name, reason in expected.items():
        (entry,) = hosts[name]["unreadable"]
        assert reason in entry["reason"], name
        assert hosts[name]["region"] is None
    assert hosts["hidden"]["unreadable"][0]["location"] == location


def both_outputs(backend: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    return host_list(backend, "--output", "json"), host_list(backend)


def check_text(outcome: tuple[int, str, str], hidden_reason: str) -> None:
    exit_code, stdout, stderr = outcome
    assert exit_code == 0, stderr
    notes = [line for line in stdout.splitlines() if line.startswith("Unreadable state")]
    assert [line.split()[4].rstrip(":") for line in notes] == ["cut", "hidden", "shape"]
    assert hidden_reason in notes[1]
    rows = {line.split()[1]: line for line in stdout.splitlines() if line.startswith("│")}
    for name in ("cut", "hidden", "shape"):
        assert "unreadable" in rows[name], name
    assert "unreadable" not in rows["healthy"]


def test_file_backend_lists_projects_whose_state_cannot_be_read(tmp_path: Path) -> None:
    write_files(tmp_path, troubled_files(HIDDEN))
    hidden = tmp_path / ".pulumi/stacks/hidden"
    hidden.chmod(0)
    try:
        as_json, as_text = without_dac_override(lambda: both_outputs(f"file://{tmp_path}"))
    finally:
        hidden.chmod(0o755)
    reason = "cannot list the folder: Permission denied"
    check_listed(as_json, reason, str(hidden))
    check_text(as_text, reason)


def test_s3_backend_lists_projects_whose_state_cannot_be_read(aws: ApiCallLog) -> None:
    s3 = boto3.client("s3", region_name=EAST)
    s3.create_bucket(Bucket="ci-state")
    for key, data in troubled_files(HIDDEN).items():
        storage = "GLACIER" if key == HIDDEN else "STANDARD"
        s3.put_object(Bucket="ci-state", Key=f"ci/{key}", Body=data, StorageClass=storage)
    aws.calls.clear()

    as_json, as_text = both_outputs(f"s3://ci-state/ci?region={EAST}")

    check_listed(as_json, "InvalidObjectState", f"s3://ci-state/ci/{HIDDEN}")
    check_text(as_text, "InvalidObjectState")
    assert {call.service for call in aws.calls} == {"s3"}


def test_200_s3_stacks_are_listed_with_one_client_in_at_most_three_rounds(
    aws: ApiCallLog,
) -> None:
    s3 = boto3.client("s3", region_name=EAST)
    s3.create_bucket(Bucket="ci-state")
    for index in range(200):
        project = f"p{index:03d}"
        body = checkpoint(project, f"host-{project}", {"region": WEST}, 1)
        key = f"ci/.pulumi/stacks/{project}/host-{project}.json"
        s3.put_object(Bucket="ci-state", Key=key, Body=body)
    lock = ".pulumi/locks/organization/p007/host-p007/9a1c.json"
    s3.put_object(Bucket="ci-state", Key=f"ci/{lock}", Body=b"{}")
    # Each call held for 0.5 s: calls issued together overlap, calls in sequence do not.
    timeline = CallTimeline(latency=ROUND_LATENCY)
    boto3.DEFAULT_SESSION = None  # no S3 client yet, as in a fresh process

    # Rounds by dependency, not by wall-clock order (a loaded machine starts calls late).
    following = timeline.following_dependencies()
    with counting_clients() as created, installed(timeline.handlers()), following:
        exit_code, stdout, stderr = host_list(f"s3://ci-state/ci?region={EAST}", "--output", "json")

    assert exit_code == 0, stderr
    hosts = json.loads(stdout)["hosts"]
    assert len(hosts) == 200 and {h["region"] for h in hosts} == {WEST}
    assert [h["project"] for h in hosts if h["locked"]] == ["p007"]
    assert created["s3"] == 1
    assert timeline.count("s3") == 202  # one listing of stacks, one of locks, 200 reads
    assert timeline.dependency_rounds("s3") == 2, timeline.dependency_rounds("s3")


def test_a_bucket_that_cannot_be_listed_is_one_error_line(aws: ApiCallLog) -> None:
    exit_code, _, stderr = host_list(f"s3://never-created?region={EAST}")
    assert exit_code == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Error: cannot list the state in s3://never-created/.pulumi/stacks/")
    assert "NoSuchBucket" in line


def test_text_shows_a_project_folder_named_like_markup_as_it_is(tmp_path: Path) -> None:
    project = "[bold]q"
    state = checkpoint(project, f"host-{project}", {"region": WEST}, 1)
    write_files(tmp_path, {f".pulumi/stacks/{project}/host-{project}.json": state})
    exit_code, stdout, stderr = host_list(f"file://{tmp_path}")
    assert exit_code == 0, stderr
    (row,) = [line for line in stdout.splitlines() if WEST in line]
    assert row.split()[1] == project


def test_host_list_imports_no_pulumi(tmp_path: Path) -> None:
    write_files(tmp_path, troubled_files(HIDDEN))
    code = (
        "import sys\n"
        "from mapt.cli import main\n"
        f"sys.argv = ['mapt', 'aws', 'host', 'list', '--backed-url', 'file://{tmp_path}']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws'))\n"
        "print(heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"
    assert "healthy" in result.stdout and "Unreadable state of project cut" in result.stdout
