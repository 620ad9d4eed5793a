"""Listing a backend's stacks from its checkpoint files, and purging a project's state.

The checkpoints below have the shape Pulumi's DIY backend writes (apitype
VersionedCheckpoint v3): a stack resource holding the outputs, secrets encrypted
under the secret signature, the manifest time with nanoseconds.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest

from mapt.core import OperationError
from mapt.stacks import (
    InMemoryEngine,
    PulumiEngine,
    StackRef,
    StackSummary,
    list_stacks,
    purge_project_state,
    resolve_backend,
)
from mapt.stacks._inventory import stack_exists
from tests.harness.privileges import without_dac_override
from tests.harness.rounds import ROUND_LATENCY, CallTimeline
from tests.harness.spot_market import ApiCallLog, installed

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


def check_listing(url: str) -> None:
    listed = list_stacks(url)
    stacks = [s for s in listed if s.unreadable is None]

    # Reported with its project, not skipped: a reader must never take it for absent.
    (broken,) = [s for s in listed if s.unreadable is not None]
    assert (broken.project, broken.stack_name) == ("broken", "host-broken")
    assert broken.unreadable is not None and broken.unreadable.startswith("not JSON")
    assert broken.location.endswith(".pulumi/stacks/broken/host-broken.json")
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


def test_file_backend_listing(tmp_path: Path) -> None:
    write_files(tmp_path, backend_files())
    check_listing(f"file://{tmp_path}")


def test_an_empty_or_missing_backend_lists_nothing(tmp_path: Path) -> None:
    assert list_stacks(f"file://{tmp_path}/never-used") == []


def _s3_backend() -> Any:
    """An S3 client, and the backend files under ``s3://ci-state/team``."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ci-state")
    for key, data in backend_files().items():
        s3.put_object(Bucket="ci-state", Key=f"team/{key}", Body=data)
    return s3


def test_s3_backend_listing_and_purge(aws: ApiCallLog) -> None:
    s3 = _s3_backend()
    s3.put_object(Bucket="ci-state", Key=".pulumi/stacks/demo/host-demo.json", Body=b"elsewhere")
    url = "s3://ci-state/team?region=us-east-1"

    check_listing(url)
    timeline = CallTimeline(latency=ROUND_LATENCY)
    with installed(timeline.handlers()):
        removed = purge_project_state(url, "demo")

    # Its four folders listed at once, then one DeleteObjects.
    assert (timeline.count("s3"), timeline.rounds("s3")) == (5, 2)

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
    assert names == ["host-broken", "host-demo", "spotOption-demo", "host-old"]


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


# -- fail closed: every format read, every bad entry reported with its project ----------


def zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def troubled_files() -> dict[str, bytes]:
    """A healthy zstd checkpoint and one of each way a checkpoint can be unreadable."""
    good = checkpoint("zst", "host-zst", {"region": "eu-west-1", "host": "198.51.100.2"}, 2)
    cut = checkpoint("cut", "host-cut", {"region": "us-east-1"}, 1)
    return {
        ".pulumi/stacks/zst/host-zst.json.zst": zstd(good),
        ".pulumi/stacks/cut/host-cut.json": cut[: len(cut) // 2],
        ".pulumi/stacks/cutgz/host-cutgz.json.gz": gzip.compress(cut)[:-12],
        ".pulumi/stacks/cutzst/host-cutzst.json.zst": zstd(cut)[:-12],
        ".pulumi/stacks/shape/host-shape.json": b'{"checkpoint": "x"}',
        ".pulumi/stacks/listed/host-listed.json": b"[]",
        ".pulumi/stacks/resources/host-resources.json": (
            b'{"version": 3, "checkpoint": {"latest": {"resources": "many"}}}'
        ),
        ".pulumi/stacks/notzst/host-notzst.json.zst": b"plain text",
        # Legacy layout: only the contents would name the project.
        ".pulumi/stacks/host-lost.json": b"{",
    }


EXPECTED_UNREADABLE = {
    ("cut", "host-cut"): "not JSON",
    ("cutgz", "host-cutgz"): "cannot decompress it",
    ("cutzst", "host-cutzst"): "cannot decompress it: the zstd data is truncated",
    ("shape", "host-shape"): "not a Pulumi checkpoint: the document.checkpoint is a str",
    ("listed", "host-listed"): "not a Pulumi checkpoint: the document is not an object",
    ("resources", "host-resources"): "checkpoint.latest.resources is a str",
    ("notzst", "host-notzst"): "cannot decompress it",
    ("", "host-lost"): "not JSON",
}


def check_troubled(stacks: list[StackSummary]) -> dict[tuple[str, str], str]:
    """The readable zstd stack is read; the rest come back as unreadable, by (project, stack)."""
    (zst,) = [s for s in stacks if s.unreadable is None]
    assert (zst.project, zst.stack_name, zst.resource_count) == ("zst", "host-zst", 2)
    assert dict(zst.outputs) == {"region": "eu-west-1", "host": "198.51.100.2"}
    found = {(s.project, s.stack_name): s.unreadable or "" for s in stacks if s.unreadable}
    for key, reason in EXPECTED_UNREADABLE.items():
        assert reason in found.pop(key), key
    return found


def test_file_backend_reads_zstd_and_reports_every_unreadable_checkpoint(tmp_path: Path) -> None:
    write_files(tmp_path, troubled_files())
    assert check_troubled(list_stacks(f"file://{tmp_path}")) == {}


def test_s3_backend_reads_zstd_and_reports_every_unreadable_checkpoint(aws: ApiCallLog) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ci-state")
    for key, data in troubled_files().items():
        s3.put_object(Bucket="ci-state", Key=key, Body=data)
    # An object S3 will not hand out (archived): read fails, the project still counts.
    archived = checkpoint("archived", "host-archived", {}, 1)
    key = ".pulumi/stacks/archived/host-archived.json"
    s3.put_object(Bucket="ci-state", Key=key, Body=archived, StorageClass="GLACIER")

    left = check_troubled(list_stacks("s3://ci-state?region=us-east-1"))

    assert list(left) == [("archived", "host-archived")]
    assert "InvalidObjectState" in left[("archived", "host-archived")]


def test_a_project_folder_that_cannot_be_listed_is_reported_with_its_project(
    tmp_path: Path,
) -> None:
    write_files(tmp_path, backend_files())
    locked = tmp_path / ".pulumi/stacks/demo"
    locked.chmod(0)
    try:
        stacks = without_dac_override(lambda: list_stacks(f"file://{tmp_path}"))
    finally:
        locked.chmod(0o755)

    (demo,) = [s for s in stacks if s.project == "demo"]
    assert demo.stack_name == "" and demo.unreadable == "cannot list the folder: Permission denied"
    assert demo.location == f"{tmp_path}/.pulumi/stacks/demo"
    assert {s.project for s in stacks if s.unreadable is None} == {"old"}


def _error_while_unreadable(folder: Path, read: Callable[[], object]) -> str:
    """The message of the ``OperationError`` that ``read`` raises while ``folder`` cannot
    be read (even by root: ``without_dac_override``)."""

    def error() -> str:
        with pytest.raises(OperationError) as raised:
            read()
        return raised.value.message

    folder.chmod(0)
    try:
        return without_dac_override(error)
    finally:
        folder.chmod(0o755)


def test_a_stacks_folder_that_cannot_be_listed_fails_the_listing(tmp_path: Path) -> None:
    write_files(tmp_path, backend_files())
    stacks_dir = tmp_path / ".pulumi/stacks"
    message = _error_while_unreadable(stacks_dir, lambda: list_stacks(f"file://{tmp_path}"))
    assert message == f"cannot list the state in {stacks_dir}: Permission denied"


def test_an_s3_backend_that_cannot_be_listed_fails_the_listing(aws: ApiCallLog) -> None:
    with pytest.raises(OperationError) as raised:
        list_stacks("s3://never-created?region=us-east-1")
    assert "s3://never-created/.pulumi/stacks/" in raised.value.message
    assert "NoSuchBucket" in raised.value.message


def check_exists(url: str) -> None:
    """A stack exists where ``pulumi stack select`` finds it: its checkpoint in either
    layout, in any of the three formats; a backup, another project's or a longer name
    is not it."""
    backend = resolve_backend(url)
    assert stack_exists(backend, "demo", "host-demo")  # .json
    assert stack_exists(backend, "demo", "spotOption-demo")  # .json.gz
    assert stack_exists(backend, "old", "host-old")  # legacy layout
    assert stack_exists(backend, "broken", "host-broken")  # unreadable, but there
    assert not stack_exists(backend, "demo", "host")  # a prefix of host-demo
    assert not stack_exists(backend, "other", "spotOption-other")
    assert not stack_exists(backend, "demo", "host-dem")


def test_a_stack_exists_when_its_checkpoint_is_in_a_file_backend(tmp_path: Path) -> None:
    files = backend_files()
    files[".pulumi/stacks/demo/events-demo.json.bak"] = b"old copy"
    write_files(tmp_path, files)
    check_exists(f"file://{tmp_path}")
    assert not stack_exists(resolve_backend(f"file://{tmp_path}"), "demo", "events-demo")
    assert not stack_exists(resolve_backend(f"file://{tmp_path}/never-used"), "demo", "host-demo")


def test_a_stack_exists_when_its_checkpoint_is_in_an_s3_backend(aws: ApiCallLog) -> None:
    s3 = _s3_backend()
    s3.put_object(Bucket="ci-state", Key="team/.pulumi/stacks/demo/host-demo/deeper.json", Body=b"")
    check_exists("s3://ci-state/team?region=us-east-1")


def test_a_stacks_folder_that_cannot_be_listed_is_not_taken_for_no_stack(
    tmp_path: Path, aws: ApiCallLog
) -> None:
    write_files(tmp_path, backend_files())
    project_dir = tmp_path / ".pulumi/stacks/demo"
    message = _error_while_unreadable(
        project_dir,
        lambda: stack_exists(resolve_backend(f"file://{tmp_path}"), "demo", "host-demo"),
    )
    assert message == f"cannot list the state in {project_dir}: Permission denied"
    with pytest.raises(OperationError, match="NoSuchBucket"):
        stack_exists(resolve_backend("s3://never-created?region=us-east-1"), "demo", "host-demo")


def test_a_legacy_checkpoint_is_the_stack_of_the_project_its_contents_name(
    tmp_path: Path,
) -> None:
    """As ``list_stacks`` reads them: a stale legacy file of another project in a
    project-layout backend is not this project's stack; one whose project cannot be
    read is unknown state, not no stack."""
    files = backend_files()
    files[".pulumi/stacks/events-demo.json"] = checkpoint("other", "events-demo", {}, 1)
    files[".pulumi/stacks/runner-demo.json"] = b"{not json"
    write_files(tmp_path, files)
    backend = resolve_backend(f"file://{tmp_path}")
    assert not stack_exists(backend, "demo", "events-demo")
    assert stack_exists(backend, "other", "events-demo")
    listed = {(s.project, s.stack_name) for s in list_stacks(backend.url)}
    assert ("other", "events-demo") in listed
    assert ("demo", "events-demo") not in listed
    with pytest.raises(OperationError) as raised:
        stack_exists(backend, "demo", "runner-demo")
    assert raised.value.message == (
        f"cannot tell whether stack runner-demo exists: {tmp_path}/.pulumi/stacks/"
        "runner-demo.json cannot be read (not JSON: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1))"
    )
    assert raised.value.exit_code == 1


def test_a_stacks_folder_that_is_a_file_is_not_taken_for_no_stack(tmp_path: Path) -> None:
    """``.pulumi`` a regular file: neither ``stack_exists`` nor ``list_stacks`` can
    list the state, and both say so."""
    (tmp_path / ".pulumi").write_text("not a folder")
    backend = resolve_backend(f"file://{tmp_path}")
    with pytest.raises(OperationError) as raised:
        stack_exists(backend, "demo", "host-demo")
    assert raised.value.message == (
        f"cannot list the state in {tmp_path}/.pulumi/stacks/demo: Not a directory"
    )
    assert raised.value.exit_code == 1
    with pytest.raises(OperationError, match="Not a directory"):
        list_stacks(backend.url)


def test_listing_state_imports_no_pulumi(tmp_path: Path) -> None:
    write_files(tmp_path, backend_files())
    code = (
        "import sys\n"
        "from mapt.stacks import list_stacks\n"
        f"assert len(list_stacks('file://{tmp_path}')) == 4\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
