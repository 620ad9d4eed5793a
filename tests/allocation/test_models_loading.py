"""``models_loading``: a session's EC2 model is parsed in another thread, ahead of use.

A host create waits on the Pulumi CLI's version check before it ranks the market;
the model's parse (about 0.15 s of CPU) runs then, not before the ranking's first
request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mapt.allocation import Ec2Queries, models_loading
from tests.harness.boto import record_model_reads


def session_with_keys() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


@pytest.fixture
def model_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[tuple[str, str]]]:
    """(thread name, file) of every botocore data file read meanwhile, by sessions
    with a loader of their own (``AWS_DATA_PATH``: not the suite's shared one)."""
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    reads = record_model_reads(monkeypatch.setattr)
    yield reads


def test_the_ec2_model_is_parsed_in_another_thread_and_not_again_by_the_ranking(
    model_reads: list[tuple[str, str]],
) -> None:
    with models_loading(session_with_keys) as made:
        pass
    session = made.result()
    loaded = [(thread, path) for thread, path in model_reads if "/ec2/" in path]
    assert loaded, model_reads
    assert all(thread != threading.current_thread().name for thread, _ in loaded)

    model_reads.clear()
    Ec2Queries(session).client("eu-west-1")  # what a ranking does first
    assert [path for _, path in model_reads if "/ec2/" in path] == []


def test_loading_in_advance_builds_no_client(
    model_reads: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each client costs its own SSL context and endpoint rules: only the loader's
    # files are read ahead, so a host create builds no client its ranking does not use.
    from botocore.session import Session as CoreSession

    built: list[str] = []
    create_client = CoreSession.create_client

    def counted(self: CoreSession, service_name: str, *args: Any, **kwargs: Any) -> Any:
        built.append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    monkeypatch.setattr(CoreSession, "create_client", counted)
    with models_loading(session_with_keys) as made:
        pass
    assert [path for _, path in model_reads if "/ec2/" in path]
    assert built == []
    made.result().client("ec2", region_name="eu-west-1")
    assert built == ["ec2"]


def test_a_session_not_loaded_in_advance_parses_the_model_when_its_first_client_is_made(
    model_reads: list[tuple[str, str]],
) -> None:
    # The measure of the test above: without models_loading the same client reads it.
    session = session_with_keys()
    Ec2Queries(session).client("eu-west-1")
    assert [path for _, path in model_reads if "/ec2/" in path]
