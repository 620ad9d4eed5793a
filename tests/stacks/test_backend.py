from __future__ import annotations

from pathlib import Path

import pytest

from mapt.core import InputError, RunContext
from mapt.stacks import StackRef, default_backend_dir, parse_backend_url, resolve_backend


def test_file_url_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = parse_backend_url("file://state")
    assert backend.kind == "file"
    assert backend.path == tmp_path / "state"
    assert backend.url == f"file://{tmp_path}/state"


def test_file_url_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_backend_url("file://~/mapt").path == tmp_path / "mapt"


def test_s3_url_keeps_bucket_prefix_and_query() -> None:
    backend = parse_backend_url("s3://ci-state/team/mapt/?region=eu-west-1")
    assert (backend.kind, backend.bucket, backend.prefix) == ("s3", "ci-state", "team/mapt")
    assert backend.params["region"] == "eu-west-1"
    assert backend.url == "s3://ci-state/team/mapt?region=eu-west-1"
    assert parse_backend_url("s3://ci-state").prefix == ""


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ci-state/prefix",
        "gs://bucket/prefix",
        "https://example.com/state",
        "s3://",
        "s3:///prefix",
        "s3://Bad_Bucket/x",
        "s3://key:secret@bucket/x",
        "file://",
        "file://state?x=1",
    ],
)
def test_bad_backend_urls_are_input_errors_naming_the_value(url: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_backend_url(url)
    assert caught.value.exit_code == 2
    if url and "secret" not in url:
        assert repr(url) in str(caught.value)
    # A URL with credentials is refused without repeating them.
    assert "secret" not in str(caught.value)


def test_default_backend_is_under_the_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAPT_STATE_DIR")
    from platformdirs import user_data_path

    assert default_backend_dir() == user_data_path("mapt", appauthor=False) / "pulumi"
    backend = resolve_backend(None)
    assert backend.kind == "file" and backend.url == f"file://{default_backend_dir()}"


def test_stack_ref_names_stacks_like_mapt() -> None:
    ref = StackRef("demo", "spotOption")
    assert ref.stack_name == "spotOption-demo"
    context = RunContext(project_name="demo", backend_url="s3://bucket/x")
    from_context = StackRef.for_context(context, "host")
    assert from_context == StackRef("demo", "host", "s3://bucket/x")
    assert from_context.stack_name == "host-demo"


@pytest.mark.parametrize(
    ("project", "name", "url"),
    [("demo", "bad name", None), ("", "host", None), ("demo", "host", "ftp://x")],
)
def test_stack_ref_refuses_bad_parts(project: str, name: str, url: str | None) -> None:
    with pytest.raises(InputError):
        StackRef(project, name, url)
