"""force_unlock removes exactly one stack's lock files, on file and s3 backends.

Layout (pulumi/pkg/backend/diy/lock.go): ``.pulumi/locks/<fully qualified stack>/
<lock id>.json`` where a project-scoped stack is ``organization/<project>/<stack>``;
the legacy layout uses ``.pulumi/locks/<stack>/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from mapt.core import OperationError
from mapt.stacks import DryRunEngine, PulumiEngine, StackRef
from tests.harness.privileges import without_dac_override
from tests.harness.spot_market import ApiCallLog

LOCK = json.dumps({"pid": 4242, "username": "runner", "hostname": "gh-7", "timestamp": "x"})


def lock_keys(project: str, stack: str) -> list[str]:
    return [
        f".pulumi/locks/organization/{project}/{stack}/0b5f1a8e-aaaa.json",
        f".pulumi/locks/organization/{project}/{stack}/77c2d3e4-bbbb.json",
    ]


OTHERS = [
    ".pulumi/locks/organization/demo/spotOption-demo/1111.json",  # same project, other stack
    ".pulumi/locks/organization/other/host-demo/2222.json",  # same stack name, other project
    ".pulumi/locks/organization/demo/host-demo2/3333.json",  # a name that starts the same
    ".pulumi/stacks/demo/host-demo.json",  # the state itself
]


def test_file_backend(tmp_path: Path) -> None:
    for key in [*lock_keys("demo", "host-demo"), ".pulumi/locks/host-demo/4444.json", *OTHERS]:
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(LOCK)
    ref = StackRef("demo", "host", f"file://{tmp_path}")
    engine = PulumiEngine()

    # A dry run reports what would go, and removes nothing.
    would = DryRunEngine(reader=engine).force_unlock(ref)
    assert len(would) == 3 and all((tmp_path / k).exists() for k in lock_keys("demo", "host-demo"))

    removed = engine.force_unlock(ref)

    assert removed == [
        f"file://{tmp_path}/{key}"
        for key in [*sorted(lock_keys("demo", "host-demo")), ".pulumi/locks/host-demo/4444.json"]
    ]
    assert removed == would
    assert not any((tmp_path / key).exists() for key in lock_keys("demo", "host-demo"))
    assert all((tmp_path / key).exists() for key in OTHERS)
    assert engine.force_unlock(ref) == []  # nothing left: a second call is a no-op


def test_file_backend_without_state(tmp_path: Path) -> None:
    assert PulumiEngine().force_unlock(StackRef("demo", "host", f"file://{tmp_path}/none")) == []


def test_file_lock_folder_that_cannot_be_listed_is_an_error_not_no_locks(tmp_path: Path) -> None:
    """Locks that cannot be listed are unknown, never none (a run would go ahead on a
    locked stack), and the error names the folder: not a raw ``PermissionError``."""
    for key in lock_keys("demo", "host-demo"):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text(LOCK)
    folder = tmp_path / ".pulumi/locks/organization/demo/host-demo"
    ref = StackRef("demo", "host", f"file://{tmp_path}")
    engine = PulumiEngine()

    def refusals() -> list[tuple[str, int]]:
        found = []
        for operation in (engine.list_locks, engine.force_unlock):
            with pytest.raises(OperationError) as caught:
                operation(ref)
            found.append((caught.value.message, caught.value.exit_code))
        return found

    folder.chmod(0)
    try:
        refused = without_dac_override(refusals)
    finally:
        folder.chmod(0o755)
    assert refused == [(f"cannot list the locks in {folder}: Permission denied", 1)] * 2
    assert all((tmp_path / key).exists() for key in lock_keys("demo", "host-demo"))


@pytest.mark.parametrize("prefix", ["", "team/mapt"])
def test_s3_backend(aws: ApiCallLog, prefix: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ci-state")
    base = f"{prefix}/" if prefix else ""
    mine = [base + key for key in lock_keys("demo", "host-demo")]
    others = [base + key for key in OTHERS]
    if prefix:  # the same stack's locks outside the prefix belong to another backend
        others += lock_keys("demo", "host-demo")
    for key in mine + others:
        s3.put_object(Bucket="ci-state", Key=key, Body=LOCK.encode())
    url = "s3://ci-state" + (f"/{prefix}" if prefix else "") + "?region=us-east-1"
    ref = StackRef("demo", "host", url)

    removed = PulumiEngine().force_unlock(ref)

    assert sorted(removed) == sorted(f"s3://ci-state/{key}" for key in mine)
    left = {obj["Key"] for obj in s3.list_objects_v2(Bucket="ci-state").get("Contents", [])}
    assert left == set(others)
    assert aws.count("DeleteObjects", service="s3") == 1


def test_s3_backend_missing_bucket_is_an_operation_error(aws: ApiCallLog) -> None:
    from mapt.core import OperationError

    with pytest.raises(OperationError, match="NoSuchBucket"):
        PulumiEngine().force_unlock(StackRef("demo", "host", "s3://no-such-bucket"))


def test_s3_a_lock_s3_refuses_to_delete_fails_the_unlock_naming_it(aws: ApiCallLog) -> None:
    # DeleteObjects answers 200 with the keys it refused: that is a failure, not success.
    from mapt.core import OperationError
    from tests.harness.spot_market import _response, installed

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ci-state")
    for key in lock_keys("demo", "host-demo"):
        s3.put_object(Bucket="ci-state", Key=key, Body=LOCK.encode())
    refused = lock_keys("demo", "host-demo")[0]

    def refuse(model: Any, **_: Any) -> Any:
        if model.name != "DeleteObjects":
            return None
        error = {"Key": refused, "Code": "AccessDenied", "Message": "Access Denied"}
        return _response(200), {"Errors": [error]}

    with (
        installed([("before-call.s3", refuse)]),
        pytest.raises(OperationError) as failed,
    ):
        PulumiEngine().force_unlock(StackRef("demo", "host", "s3://ci-state?region=us-east-1"))
    assert failed.value.message == (
        f"cannot remove the lock s3://ci-state/{refused}: AccessDenied Access Denied"
    )
