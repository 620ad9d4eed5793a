"""``spotOption-<project>`` on the real Pulumi engine: created, read back, destroyed, purged.

The EC2 side is moto in-process with the replayed spot market (tests/harness/spot_market.py);
the stack itself is written by the real CLI, on a file backend and on an S3 backend served by
moto_server on 127.0.0.1.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from mapt.allocation import AllocationArgs, ComputeRequest, SpotArgs, allocation
from mapt.core import RunContext
from mapt.hosts import destroy_host, list_hosts
from mapt.stacks import PulumiEngine, StackRef, list_stacks
from tests.harness.spot_market import ApiCallLog, SpotMarket
from tests.stacks.real_engine.conftest import RealCli, leftovers

ARGS = AllocationArgs(
    compute_request=ComputeRequest(
        cpus=2, memory_gib=8, compute_families=("m5", "m6a", "m6i", "m7a", "m7i", "t3", "t3a")
    ),
    spot=SpotArgs(tolerance="low"),
)
BUCKET = "mapt-state"
# The oldest CLI seen to honour AWS_ENDPOINT_URL_S3 (3.205 does not; its S3 backend
# predates the AWS SDK for Go v2).
ENDPOINT_VARIABLE_SINCE = "3.276.0"


def engine() -> PulumiEngine:
    return PulumiEngine(progress_stream=io.StringIO(), live=False)


@pytest.fixture
def market(spot_market: SpotMarket) -> SpotMarket:
    spot_market.scores = {"use1-az4": 9, "eun1-az1": 9, "aps1-az1": 8, "usw2-az1": 7}
    return spot_market


def choose_keep_destroy_purge(context: RunContext, market: SpotMarket, aws: ApiCallLog) -> None:
    """The spot stack's whole life on the real engine, as ``host create``/``destroy`` live it."""
    ref = StackRef.for_context(context, "spotOption")
    first = allocation(context, ARGS, engine=engine())
    assert engine().exists(ref)
    assert engine().outputs(ref)["az"] == first.availability_zone

    # A re-run (a new engine, so nothing is cached in-process) reads the kept choice.
    before = aws.count()
    market.scores = {"eun1-az2": 10}
    assert allocation(context, ARGS, engine=engine()) == first
    assert aws.count() == before

    # What host list and the sweep read: the stack, its project and its plain outputs.
    [summary] = list_stacks(context.backend_url)
    assert (summary.project, summary.stack_name, summary.kind) == (
        "demo", "spotOption-demo", "spotOption",
    )  # fmt: skip
    assert summary.outputs["region"] == first.region and summary.resource_count == 0
    assert summary.updated_at is not None and summary.locks == ()
    [host] = list_hosts(engine(), context.backend_url)
    assert (host.project, host.region, host.availability_zone, host.spot) == (
        "demo", first.region, first.availability_zone, True,
    )  # fmt: skip

    outcome = destroy_host(context, engine=engine(), force=False, keep_state=False, lock_timeout=30)
    assert outcome.destroyed == ("spotOption-demo",)
    assert outcome.purged  # the update history and backups stack rm keeps
    assert not engine().exists(ref)
    assert list_stacks(context.backend_url) == []
    # Destroying again finds nothing and fails nothing.
    again = destroy_host(context, engine=engine(), force=False, keep_state=False, lock_timeout=30)
    assert again.nothing_to_destroy and again.purged == ()


def test_on_a_file_backend(
    real_cli: RealCli, market: SpotMarket, aws: ApiCallLog, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    choose_keep_destroy_purge(RunContext("demo", f"file://{state}"), market, aws)
    # Purged: of project demo nothing is left in the backend, only the backend's own files.
    kept = sorted(p.relative_to(state).as_posix() for p in state.rglob("*") if p.is_file())
    assert kept == [
        ".mapt/locks/demo.lock", ".pulumi/meta.yaml", ".pulumi/meta.yaml.attrs", "mapt-passphrase",
    ]  # fmt: skip
    assert leftovers(real_cli) == []


@pytest.fixture
def bucket(moto_server: str, aws_env: None) -> Iterator[str]:
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    yield BUCKET
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    if keys:
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    s3.delete_bucket(Bucket=BUCKET)


def bucket_keys(moto_server: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.mark.parametrize(
    "form",
    [
        "endpoint={endpoint}&s3ForcePathStyle=true&region=us-east-1",
        # The AWS SDK v1 form older mapt docs and Pulumi releases used.
        "endpoint={host}&disableSSL=true&s3ForcePathStyle=true&region=us-east-1",
        # No query: the endpoint comes from the AWS SDKs' own variable; older CLIs (AWS
        # SDK for Go v1) ignore it and would go to AWS.
        pytest.param("", marks=pytest.mark.pulumi_since(ENDPOINT_VARIABLE_SINCE)),
    ],
    ids=["endpoint-url", "legacy-disableSSL", "AWS_ENDPOINT_URL_S3"],
)
def test_on_an_s3_backend(
    real_cli: RealCli,
    market: SpotMarket,
    aws: ApiCallLog,
    moto_server: str,
    bucket: str,
    form: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct horse battery staple")
    query = form.format(endpoint=moto_server, host=moto_server.removeprefix("http://"))
    if not query:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    url = f"s3://{bucket}/ci" + (f"?{query}" if query else "")
    choose_keep_destroy_purge(RunContext("demo", url), market, aws)
    assert bucket_keys(moto_server) == ["ci/.pulumi/meta.yaml"]
    assert leftovers(real_cli) == []
