"""``aws_session``: boto3 sessions of one process share a botocore loader, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mapt.core import aws_session, default_aws_session, shared_loader
from mapt.core._aws_sessions import plain_json_files
from tests.harness.boto import record_model_reads


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_a_second_session_parses_no_model_the_first_one_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = aws_session(), aws_session()
    first.client("autoscaling", region_name="eu-west-1")
    assert second._session.get_component("data_loader") is shared_loader()
    assert default_aws_session()._session.get_component("data_loader") is shared_loader()
    read = record_model_reads(monkeypatch.setattr)
    second.client("autoscaling", region_name="eu-west-2")
    assert read == []


def test_each_session_keeps_its_own_region_and_credentials() -> None:
    paris = aws_session(region_name="eu-west-3", aws_access_key_id="a", aws_secret_access_key="b")
    virginia = aws_session(region_name="us-east-1")
    assert (paris.region_name, virginia.region_name) == ("eu-west-3", "us-east-1")
    assert paris.get_credentials().access_key == "a"
    assert virginia.get_credentials().access_key == "testing"


def test_many_sessions_leave_the_loaders_search_paths_as_they_were() -> None:
    """A server makes a session per health check: boto3 adds its folder to the loader's
    paths at each, which must not pile up."""
    aws_session()
    before = list(shared_loader().search_paths)
    for _ in range(20):
        aws_session()
    assert shared_loader().search_paths == before


def test_a_session_configured_with_other_models_gets_a_loader_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    loader = aws_session()._session.get_component("data_loader")
    assert loader is not shared_loader()
    assert str(tmp_path) in loader.search_paths


def test_the_plain_reader_reads_what_botocores_reads_as_dicts() -> None:
    """The shared loader's reader parses botocore's files as botocore's own does, keys in
    the same order, and knows the same extensions: one botocore added would be a file
    ``exists`` finds and the plain reader does not read."""
    from collections import OrderedDict

    import botocore.loaders
    from botocore.loaders import JSONFileLoader

    assert tuple(botocore.loaders._JSON_OPEN_METHODS) == (".json", ".json.gz")
    data = Path(botocore.loaders.Loader.BUILTIN_DATA_PATH)
    stems = [
        data / name for name in ("endpoints", "partitions", "_retry", "sdk-default-configuration")
    ]
    for service in ("ec2", "autoscaling", "elbv2", "route53", "sqs", "pricing"):
        for version in sorted((data / service).iterdir()):
            stems += [version / f.name.split(".")[0] for f in version.iterdir()]
    stems.append(data / "no-such-file")
    botocores, plain = JSONFileLoader(), plain_json_files()()
    for stem in stems:
        theirs, ours = botocores.load_file(str(stem)), plain.load_file(str(stem))
        assert ours == theirs, stem
        assert json.dumps(ours) == json.dumps(theirs), f"key order differs in {stem}"
        assert not isinstance(ours, OrderedDict)
    assert len(stems) > 30
