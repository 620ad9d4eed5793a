"""``mapt.hosts.create_request``: the one validation of a create, for the CLI and the service.

Each bad input is given twice, as the CLI's flag and as the service's JSON field: the
CLI's one ``Error:`` line and the library's ``InputError`` must say the same thing,
and neither creates anything. Inputs only a JSON body can hold (wrong kinds, unknown
fields, lists) are checked on the library alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mapt.core import InputError
from mapt.hosts import create_request, destroy_request
from tests.cli.host_harness import FAMILIES, Harness
from tests.harness.spot_market import SpotMarket


def fields_of(cli: Harness, **extra: Any) -> dict[str, Any]:
    """The fields of ``Harness.create``'s flags, as a JSON client would send them."""
    base: dict[str, Any] = {
        "os": "fedora",
        "name": "demo",
        "backed_url": cli.backend,
        "cpus": 2,
        "memory": 8,
        "compute_families": FAMILIES,
    }
    return {**base, **extra}


SAME_ERRORS = [
    (["--spot-max-attempts", "0"], {"spot_max_attempts": 0}),
    (["--compute-sizes", "m5.large"], {"compute_sizes": "m5.large"}),
    (["--service-endpoints", "s3"], {"service_endpoints": "s3"}),
    (["--spot-eviction-tolerance", "low"], {"spot_eviction_tolerance": "low"}),
    (["--spot", "--spot-increase-rate", "5000"], {"spot": True, "spot_increase_rate": 5000}),
    (["--timeout", "8d"], {"timeout": "8d"}),
    (["--tags", "aws:owner=me"], {"tags": "aws:owner=me"}),
    (["--version", "0.1.0"], {"version": "0.1.0"}),
    (["--region", "mars-north-1"], {"region": "mars-north-1"}),
    (["--ghactions-runner-labels", "gpu"], {"ghactions_runner_labels": "gpu"}),
    (["--ghactions-runner-repo", "acme/app", "--ghactions-runner-labels", "a,,b"],
     {"ghactions_runner_repo": "acme/app", "ghactions_runner_labels": "a,,b"}),
    (["--lock-timeout", "soon"], {"lock_timeout": "soon"}),
    (["--disk-size", "5"], {"disk_size": 5}),
    (["--memory", "1e308"], {"memory": 1e308}),
    (["--cpus", "5000"], {"cpus": 5000}),
    (["--gpus", "17"], {"gpus": 17}),
    (["--secrets-provider", "vault"], {"secrets_provider": "vault"}),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "fields"), SAME_ERRORS)
def test_the_cli_and_the_fields_refuse_alike(
    cli: Harness, market: SpotMarket, flags: list[str], fields: dict[str, Any]
) -> None:
    result = cli.create(*flags)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    with pytest.raises(InputError) as refused:
        create_request(fields_of(cli, **fields))
    assert line == f"Error: {refused.value}"
    assert cli.engine.stack_names() == []


def test_fields_build_the_request_the_flags_build(cli: Harness, tmp_path: Path) -> None:
    request = create_request(
        fields_of(
            cli,
            spot=True,
            spot_excluded_regions=["eu-west-1"],
            compute_families=["m5", "m6i"],
            tags={"team": "ci"},
            timeout="2h",
            conn_details_output=str(tmp_path / "conn"),
            disk_size="50",
        )
    )
    assert request.project == "demo" and request.context.tags == {"team": "ci"}
    assert request.compute.cpus == 2 and request.compute.compute_families == ("m5", "m6i")
    assert request.spot is not None and request.spot.excluded_regions == ("eu-west-1",)
    assert request.host.os == "fedora" and request.host.disk_size == 50
    assert request.host.expires_at is not None
    assert request.conn_dir == tmp_path / "conn"
    assert request.lock_timeout == 300 and request.max_attempts == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cpu": 4}, "unknown field 'cpu'"),
        ({"cpus": "eight"}, "--cpus 'eight' is not a whole number"),
        ({"cpus": True}, "--cpus True is not a whole number"),
        ({"memory": "16"}, "--memory '16' is not a number"),
        ({"spot": "yes"}, "--spot 'yes' is not true or false"),
        ({"version": 41}, "--version 41 is not text"),
        ({"version": " "}, "--version ' ' is empty"),
        ({"compute_families": ["m5", ""]}, "--compute-families ['m5', ''] is not"),
        ({"tags": {"team": 7}}, "--tags {'team': 7} holds a value that is not text"),
        ({"project_name": "demo"}, "--project-name and --name both name the project"),
    ],
)
def test_json_only_inputs_are_refused_by_name(
    cli: Harness, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match="^" + message.replace("[", r"\[").replace("(", r"\(")):
        create_request(fields_of(cli, **fields))


def test_a_caller_may_name_fields_its_own_way(cli: Harness) -> None:
    with pytest.raises(InputError, match=r"^spot_max_attempts 0 must be at least 1"):
        create_request(fields_of(cli, spot_max_attempts=0), name=str)


def test_the_os_and_the_project_are_required(cli: Harness) -> None:
    no_os = fields_of(cli)
    del no_os["os"]
    with pytest.raises(InputError, match="--os is required"):
        create_request(no_os)
    no_name = fields_of(cli)
    del no_name["name"]
    with pytest.raises(InputError, match="--project-name is required"):
        create_request(no_name)


def test_a_secret_field_is_never_echoed(cli: Harness) -> None:
    token = "AREGISTRATIONTOKEN7QXJ2KBWZPM4"
    with pytest.raises(InputError) as refused:
        create_request(fields_of(cli, ghactions_runner_token=token))
    assert str(refused.value).startswith("--ghactions-runner-token applies only with")
    assert token not in str(refused.value)


def test_destroy_fields_are_checked_the_same_way(cli: Harness) -> None:
    request = destroy_request({"name": "demo", "force_destroy": True, "lock_timeout": "1m"})
    assert request.project == "demo" and request.force and request.lock_timeout == 60
    with pytest.raises(InputError, match="unknown field 'spot'"):
        destroy_request({"name": "demo", "spot": True})
    with pytest.raises(InputError, match="--lock-timeout 'never' is not a duration"):
        destroy_request({"name": "demo", "lock_timeout": "never"})


def test_the_event_intake_project_is_no_host_project(cli: Harness) -> None:
    # The service names the project 'name': it is refused by that name, as the flag is.
    reserved = r"^name 'mapt-events' is reserved: it is mapt's event intake project"
    with pytest.raises(InputError, match=reserved):
        create_request(fields_of(cli, name="mapt-events"), name=str)
    with pytest.raises(InputError, match=reserved):
        destroy_request({"name": "mapt-events"}, name=str)


def test_every_flag_of_create_and_destroy_is_a_field() -> None:
    """A flag the library does not know would be refused as an unknown field."""
    import typer

    from mapt.cli._host import host_app
    from mapt.cli._remote import REMOTE_PARAMETERS
    from mapt.hosts import CREATE_FIELDS, DESTROY_FIELDS

    commands = typer.main.get_command(host_app).commands  # type: ignore[attr-defined]
    # How to run (here, in the sandbox or on a server) and print: not the request.
    how_to_run = {"dry_run", "output", "sandbox", *REMOTE_PARAMETERS}
    for command, fields in (("create", CREATE_FIELDS), ("destroy", DESTROY_FIELDS)):
        flags = {"os" if p.name == "os_name" else p.name for p in commands[command].params}
        inputs = {f for f in flags - how_to_run if not f.endswith("_file")}
        assert inputs <= fields, (command, inputs - fields)
        assert fields - inputs == {"name"}  # the service's name for the project


def test_bad_runner_labels_are_bad_input_before_any_prerequisite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every value is checked before the prerequisites: a bad label is exit 2, even on a
    machine without the Pulumi CLI (which is exit 5 once the input is valid)."""
    from typer.testing import CliRunner

    from mapt.cli import app

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi"))
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))
    args = ["aws", "host", "create", "--os", "fedora", "--project-name", "demo",
            "--ghactions-runner-repo", "acme/app"]  # fmt: skip
    bad = CliRunner().invoke(app, [*args, "--ghactions-runner-labels", "gpu,,x"])
    assert bad.exit_code == 2, bad.output
    assert bad.stderr.startswith("Error: --ghactions-runner-labels 'gpu,,x' has an empty item")
    good = CliRunner().invoke(app, [*args, "--ghactions-runner-labels", "gpu"])
    assert good.exit_code == 5 and "the Pulumi CLI was not found" in good.stderr, good.output


ZONE = "--availability-zone"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"availability_zone": "us-east-1"}, f"{ZONE} 'us-east-1' is not an availability zone"),
        (
            {"availability_zone": "xx-nowhere-1a"},
            f"{ZONE} 'xx-nowhere-1a': region 'xx-nowhere-1' is not an AWS region",
        ),
        (
            {"availability_zone": "us-west-2a", "region": "us-east-1"},
            f"{ZONE} us-west-2a is not in --region us-east-1",
        ),
    ],
)
def test_a_pinned_zone_must_name_a_zone_of_the_region(
    fields: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(InputError, match=message):
        create_request({"name": "demo", "os": "fedora", **fields})


def test_a_pinned_zone_gives_the_region_when_none_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the environment's region too: a pool's template in us-east-1's shell
    pins members to the spot market's zones anywhere."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    request = create_request({"name": "demo", "os": "fedora", "availability_zone": "eu-north-1b"})
    assert (request.availability_zone, request.context.region) == ("eu-north-1b", "eu-north-1")
