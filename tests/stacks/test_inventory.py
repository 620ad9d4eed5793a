"""Listing a backend's stacks from its checkpoint files, and purging a project's state.

The checkpoints below have the shape Pulumi's DIY backend writes (apitype
VersionedCheckpoint v3): a stack resource holding the outputs, secrets encrypted
under the secret signature, the manifest time with nanoseconds.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest

from mapt.stacks import InMemoryEngine, PulumiEngine, StackRef, list_stacks, purge_project_state
from tests.harness.spot_market import ApiCallLog

SECRET = {
    "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
    "ciphertext": "v1:x",
}


def checkpoint(project: str, stack: str, outputs: dict[str, object], extra: int) -> bytes:
    stack_urn = f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
    resources = [{"urn": stack_urn, "type": "pulumi:pulumi:Stack", "outputs": outputs}]
    resources += [
        {
            "urn": f"urn:pulumi:{stack}::{project}::aws:ec2/vpc:Vpc::vpc-{i}",
            "type": "aws:ec2/vpc:Vpc",
        }
        for i in range(extra)
    ]
    document = {
        "version": 3,
        "checkpoint": {
            "stack": f"organization/{project}/{stack}",
            "latest": {
                "manifest": {
                    "time": "2026-11-20T08:15:30.123456789Z",
                    "magic": "m",
                    "version": "v3",
                },
                "resources": resources,
            },
        },
    }
    return json.dumps(document).encode()


def backend_files() -> dict[str, bytes]:
    """Two projects, three stacks, plus what a listing must skip."""
    host_outputs = {"region": "eu-west-1", "host": "203.0.113.7", "id_rsa": SECRET}
    return {
        ".pulumi/stacks/demo/host-demo.json": checkpoint("demo", "host-demo", host_outputs, 12),
        ".pulumi/stacks/demo/host-demo.json.bak": b"old copy",
        ".pulumi/stacks/demo/spotOption-demo.json.gz": gzip.compress(
            checkpoint("demo", "spotOption-demo", {"az": "eu-west-1b"}, 0)
        ),
        # Legacy layout (before Pulumi 3.61): the project comes from the URNs.
        ".pulumi/stacks/host-old.json": checkpoint("old", "host-old", {"region": "us-east-1"}, 3),
        ".pulumi/stacks/broken/host-broken.json": b"{not json",
        ".pulumi/history/demo/host-demo/host-demo-1.history.json": b"{}",
        ".pulumi/backups/demo/host-demo/host-demo.1.json": b"{}",
        ".pulumi/locks/organization/demo/host-demo/0b5f.json": b"{}",
        ".pulumi/history/old/host-old/host-old-1.history.json": b"{}",
        ".pulumi/meta.yaml": b"version: 1\n",
    }


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def check_listing(url: str, caplog: pytest.LogCaptureFixture) -> None:
    stacks = list_stacks(url)

    assert [(s.project, s.stack_name, s.kind) for s in stacks] == [
        ("demo", "host-demo", "host"),
        ("demo", "spotOption-demo", "spotOption"),
        ("old", "host-old", "host"),
    ]
    host, spot, old = stacks
    # Secret outputs stay out: listing never needs the passphrase.
    assert dict(host.outputs) == {"region": "eu-west-1", "host": "203.0.113.7"}
    assert host.resource_count == 12 and old.resource_count == 3 and spot.resource_count == 0
    assert host.updated_at == datetime(2026, 11, 20, 8, 15, 30, 123456, tzinfo=timezone.utc)
    assert dict(spot.outputs) == {"az": "eu-west-1b"}
    assert len(host.locks) == 1 and host.locks[0].endswith("host-demo/0b5f.json")
    assert spot.locks == ()
    assert "host-broken.json" in caplog.text  # skipped with a warning, not a crash


def test_file_backend_listing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_files(tmp_path, backend_files())
    check_listing(f"file://{tmp_path}", caplog)


def test_an_empty_or_missing_backend_lists_nothing(tmp_path: Path) -> None:
    assert list_stacks(f"file://{tmp_path}/never-used") == []


def test_s3_backend_listing_and_purge(aws: ApiCallLog, caplog: pytest.LogCaptureFixture) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ci-state")
    for key, data in backend_files().items():
        s3.put_object(Bucket="ci-state", Key=f"team/{key}", Body=data)
    s3.put_object(Bucket="ci-state", Key=".pulumi/stacks/demo/host-demo.json", Body=b"elsewhere")
    url = "s3://ci-state/team?region=us-east-1"

    check_listing(url, caplog)
    removed = purge_project_state(url, "demo")

    left = {obj["Key"] for obj in s3.list_objects_v2(Bucket="ci-state")["Contents"]}
    assert len(removed) == 6 and all(r.startswith("s3://ci-state/team/.pulumi/") for r in removed)
    assert left == {
        ".pulumi/stacks/demo/host-demo.json",  # outside the backend's prefix
        "team/.pulumi/stacks/host-old.json",
        "team/.pulumi/stacks/broken/host-broken.json",
        "team/.pulumi/history/old/host-old/host-old-1.history.json",
        "team/.pulumi/meta.yaml",
    }


def test_file_purge_removes_only_that_project(tmp_path: Path) -> None:
    write_files(tmp_path, backend_files())
    (tmp_path / ".pulumi/stacks/demo2").mkdir()
    (tmp_path / ".pulumi/stacks/demo2/host-demo2.json").write_bytes(b"{}")

    removed = purge_project_state(f"file://{tmp_path}", "demo")

    assert sorted(removed) == sorted(str(tmp_path / k) for k in backend_files() if "/demo/" in k)
    assert not (tmp_path / ".pulumi/stacks/demo").exists()  # no empty folders left
    assert not (tmp_path / ".pulumi/locks/organization/demo").exists()
    assert (tmp_path / ".pulumi/stacks/demo2/host-demo2.json").exists()
    assert (tmp_path / ".pulumi/stacks/host-old.json").exists()
    assert purge_project_state(f"file://{tmp_path}", "demo") == []


def test_the_pulumi_engine_lists_from_the_backend(tmp_path: Path) -> None:
    write_files(tmp_path, backend_files())
    names = [s.stack_name for s in PulumiEngine().list_stacks(f"file://{tmp_path}")]
    assert names == ["host-demo", "spotOption-demo", "host-old"]


def test_in_memory_listing_hides_secrets_and_shows_locks() -> None:
    import pulumi

    engine = InMemoryEngine()
    ref = StackRef("demo", "host", "file:///state")

    def program() -> None:
        pulumi.export("region", "eu-west-1")
        pulumi.export("id_rsa", pulumi.Output.secret("PRIVATE"))

    engine.up(ref, program)
    engine.lock(ref)

    (summary,) = engine.list_stacks("file:///state")
    assert summary.stack_name == "host-demo" and dict(summary.outputs) == {"region": "eu-west-1"}
    assert len(summary.locks) == 1
    assert engine.list_stacks(None) == []  # another backend
    assert engine.purge_project_state("file:///state", "demo") == list(summary.locks)
