from __future__ import annotations

import re
from typing import Any

import pytest

from mapt.core import InputError, RunContext, check_region_name, parse_tags, validate_project_name


@pytest.mark.parametrize("name", ["demo", "ci-1234", "my_project", "A1", "x" * 40])
def test_valid_project_names(name: str) -> None:
    assert validate_project_name(name) == name


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("", "empty"),
        ("my project", "'my project'"),
        ("team/app", "'team/app'"),
        ("-leading", "'-leading'"),
        ("x" * 200, "200 characters"),
        ("dots.are.out", "'dots.are.out'"),
    ],
)
def test_invalid_project_names_name_the_value(name: str, named: str) -> None:
    with pytest.raises(InputError) as raised:
        validate_project_name(name)
    assert named in str(raised.value)
    assert raised.value.exit_code == 2


def test_context_builds_stack_names_and_freezes_tags() -> None:
    tags = {"team": "qe"}
    context = RunContext(project_name="demo", tags=tags)
    tags["team"] = "changed"
    assert context.stack_name("spotOption") == "spotOption-demo"
    assert context.tags == {"team": "qe"}
    with pytest.raises(TypeError):
        context.tags["x"] = "y"  # type: ignore[index]


def test_context_refuses_a_bad_project_name() -> None:
    with pytest.raises(InputError, match="'a b'"):
        RunContext(project_name="a b")


def test_region_falls_back_to_the_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert RunContext(project_name="p").resolved_region() == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert RunContext(project_name="p").resolved_region() == "eu-north-1"
    assert RunContext(project_name="p", region="us-east-2").resolved_region() == "us-east-2"


@pytest.mark.parametrize(
    "name", ["us-east-1", "eu-north-1", "us-gov-west-1", "cn-north-1", "eusc-de-east-1"]
)
def test_region_names_of_every_partition_are_accepted(name: str) -> None:
    assert check_region_name(name) == name
    assert RunContext(project_name="p", region=name).region == name


def test_checking_a_region_name_reads_no_service_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CLI run that checks ``--region`` must not parse EC2's 4 MB model for it (its
    ranking's session parses that once, on its own loader)."""
    import botocore.loaders

    from mapt.core import known_regions

    read: list[str] = []
    original = botocore.loaders.Loader.load_service_model

    def recording(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        read.append(service_name)
        return original(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.loaders.Loader, "load_service_model", recording)
    known_regions.cache_clear()
    try:
        assert check_region_name("ap-southeast-7") == "ap-southeast-7"
    finally:
        known_regions.cache_clear()
    assert read == []


@pytest.mark.parametrize("name", ["../../etc", "", "us-east-99x", "us-east-99", "US-EAST-1"])
def test_names_no_partition_knows_are_refused(name: str) -> None:
    with pytest.raises(InputError, match=re.escape(f"--region {name!r} is not an AWS region")):
        check_region_name(name, "--region")


def test_a_bad_region_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "../../etc")
    with pytest.raises(InputError, match=re.escape("AWS_REGION=../../etc (from the environment)")):
        RunContext(project_name="p").resolved_region()


def test_parse_tags() -> None:
    assert parse_tags("") == {}
    assert parse_tags("team=qe,cost-center=42") == {"team": "qe", "cost-center": "42"}
    assert parse_tags("url=a=b") == {"url": "a=b"}
    assert parse_tags("empty=") == {"empty": ""}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a", "'a'"),
        ("=b", "'=b'"),
        ("k=1,k=2", "'k'"),
        ("a=1,", "''"),
        ("aws:name=x", "'aws:name'"),
        ("mapt:project=x", "'mapt:project'"),
        ("k=$(reboot)", "'k=$(reboot)'"),
        ("k" * 129 + "=v", "too long"),
    ],
)
def test_malformed_tags_are_refused_naming_the_bad_item(text: str, named: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_tags(text)
    assert named in str(raised.value)
