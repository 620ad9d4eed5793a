"""``aws_session``: boto3 sessions of one process share a botocore loader, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapt.core import aws_session, shared_loader


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_a_second_session_parses_no_model_the_first_one_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.loaders import JSONFileLoader

    first, second = aws_session(), aws_session()
    first.client("autoscaling", region_name="eu-west-1")
    assert second._session.get_component("data_loader") is shared_loader()
    read: list[str] = []
    load_file = JSONFileLoader.load_file
    monkeypatch.setattr(
        JSONFileLoader, "load_file", lambda self, path: read.append(path) or load_file(self, path)
    )
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
