"""``mapt aws host create|destroy|list`` end to end, in-process.

The flows run on the in-memory engine (the real Pulumi CLI is not available here),
EC2 on moto with the replayed spot market, and the images published where the test
says they exist. Readiness is replaced by a recorder: SSH readiness itself is tested
against a real sshd in ``tests/targets``. What a deployment makes on AWS (resources,
addresses, tags, what failover and sweep remove) is checked on the sandbox engine
against moto_server, in ``tests/sandbox``.
"""

from __future__ import annotations

import json
import shlex
import signal
import stat
from pathlib import Path

import pytest

from mapt.core import InputError, Interrupted, OperationError, RunContext
from mapt.hosts import destroy_host
from mapt.stacks import StackRef
from mapt.targets import SshAccess
from mapt.targets.aws import EVENTS_PROJECT, ensure_event_intake, event_intake_regions
from tests.cli.host_harness import (
    FAMILIES,
    FEDORA_41,
    FEDORA_OWNER,
    WRITES,
    Harness,
    spot_calls,
)
from tests.cli.stand_in_server import stand_in_server
from tests.harness.pulumi_mocks import FAKE_PRIVATE_KEY_PEM
from tests.harness.spot_market import ApiCallLog, SpotMarket

# -- create ---------------------------------------------------------------------------------


def test_spot_create_runs_end_to_end_and_writes_connection_files(
    cli: Harness, market: SpotMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github_output = tmp_path / "github_output"
    github_output.write_text("earlier=line\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))

    result = cli.create("--spot", "--conn-details-output", str(cli.conn))

    assert result.exit_code == 0, result.output
    spot = cli.engine.outputs(StackRef("demo", "spotOption", cli.backend))
    host = cli.engine.outputs(StackRef("demo", "host", cli.backend))
    assert host["region"] == spot["region"] and host["availability_zone"] == spot["az"]
    assert spot["region"] in ("us-east-1", "eu-north-1", "ap-south-1", "us-west-2")
    assert f"region:            {spot['region']}" in result.stdout
    assert f"host:              {host['host']}" in result.stdout
    assert "Host ready." in result.stdout
    # Readiness ran once, against the host the stack exported.
    assert [a.target.host for a in cli.ready] == [host["host"]]
    # Connection files: the values, private to the user.
    key = cli.conn / "id_rsa"
    assert key.read_text() == FAKE_PRIVATE_KEY_PEM
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (cli.conn / "username").read_text() == "fedora\n"
    lines = github_output.read_text().splitlines()
    assert lines[0] == "earlier=line"  # appended, not overwritten
    facts = dict(line.split("=", 1) for line in lines[1:])
    assert facts["host"] == host["host"] and facts["username"] == "fedora"
    assert facts["region"] == spot["region"] and facts["availability-zone"] == spot["az"]
    assert facts["instance-types"] == ",".join(spot["instance_types"])
    assert float(facts["spot-price"]) == pytest.approx(spot["spot_price"])
    assert facts["conn-details"] == str(cli.conn)
    assert "PRIVATE KEY" not in github_output.read_text() + result.stdout


def test_a_reused_connection_folder_holds_only_the_new_hosts_files(
    cli: Harness, market: SpotMarket
) -> None:
    assert cli.create("--airgap", "--conn-details-output", str(cli.conn)).exit_code == 0
    assert (cli.conn / "bastion_host").exists()
    (cli.conn / "notes.txt").write_text("kept\n")
    assert cli.destroy().exit_code == 0
    result = cli.create("--conn-details-output", str(cli.conn), project="other")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in cli.conn.iterdir()) == ["host", "id_rsa", "notes.txt", "username"]


def test_create_again_reuses_the_spot_choice_with_zero_market_calls(
    cli: Harness, market: SpotMarket
) -> None:
    first = cli.create("--spot", "--output", "json")
    assert first.exit_code == 0, first.output
    calls = spot_calls(market)
    assert calls > 0
    market.scores = {"eun1-az2": 10}  # the market moved: a new scan would choose elsewhere

    again = cli.create("--spot", "--output", "json")

    assert again.exit_code == 0, again.output
    assert spot_calls(market) == calls
    one, two = json.loads(first.stdout), json.loads(again.stdout)
    assert one["allocation"] == two["allocation"]
    assert sorted(cli.engine.stack_names()) == ["host-demo", "spotOption-demo"]


def test_json_output_is_one_object_with_the_documented_keys_and_no_secrets(
    cli: Harness, market: SpotMarket
) -> None:
    result = cli.create("--spot", "--output", "json", "--conn-details-output", str(cli.conn))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert set(document) == {"dry_run", "allocation", "hourly_price", "outputs", "files"}
    assert document["dry_run"] is False
    allocation = document["allocation"]
    assert {"region", "availability_zone", "instance_types", "spot_price", "max_price"} <= set(
        allocation
    )
    assert document["hourly_price"] == allocation["spot_price"]
    assert {"host", "username", "region", "availability_zone"} <= set(document["outputs"])
    assert "id_rsa" not in document["outputs"]
    assert sorted(Path(f).name for f in document["files"]) == ["host", "id_rsa", "username"]
    assert "PRIVATE KEY" not in result.stdout


def test_on_demand_create_uses_the_given_region(cli: Harness, market: SpotMarket) -> None:
    result = cli.create("--region", "eu-north-1", "--output", "json")
    assert result.exit_code == 0, result.output
    allocation = json.loads(result.stdout)["allocation"]
    assert allocation["region"] == "eu-north-1" and allocation["spot_price"] is None
    assert cli.engine.stack_names() == ["host-demo"]  # no spot choice for on-demand
    assert spot_calls(market) == 0


def test_dry_run_shows_choice_price_and_resources_and_creates_nothing(
    cli: Harness, market: SpotMarket, aws: ApiCallLog
) -> None:
    result = cli.create("--spot", "--dry-run", "--conn-details-output", str(cli.conn))

    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was created" in result.stdout
    assert "estimated cost:" in result.stdout and "USD/h" in result.stdout
    assert "aws:autoscaling/group:Group" in result.stdout
    assert "aws:ec2/vpc:Vpc" in result.stdout
    assert cli.engine.stack_names() == []
    assert not cli.conn.exists()
    assert not [c for c in aws.calls if c.operation.startswith(WRITES)]
    assert cli.ready == []


def test_dry_run_json_lists_resources_and_uses_the_real_image(
    cli: Harness, market: SpotMarket, aws: ApiCallLog
) -> None:
    import boto3

    market_images = {
        image["ImageId"]
        for region in ("us-east-1", "eu-north-1", "ap-south-1", "us-west-2")
        for image in boto3.client("ec2", region_name=region).describe_images(Owners=[FEDORA_OWNER])[
            "Images"
        ]
    }
    result = cli.create("--spot", "--dry-run", "--output", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dry_run"] is True and document["files"] == []
    types = {r["type"] for r in document["resources"]}
    assert {"aws:ec2/launchTemplate:LaunchTemplate", "aws:lb/loadBalancer:LoadBalancer"} <= types
    assert all(r["op"] == "create" for r in document["resources"])
    # The image is the one published in the chosen region, found by DescribeImages.
    (image,) = document["images"]
    assert image["name"] == FEDORA_41 and image["region"] == document["allocation"]["region"]
    assert image["id"] in market_images


def test_dry_run_fails_like_a_real_run_when_the_image_is_missing(
    cli: Harness, market: SpotMarket
) -> None:
    result = cli.create("--region", "eu-west-3", "--dry-run")
    assert result.exit_code == 1
    assert "no image in eu-west-3" in result.stderr and FEDORA_OWNER in result.stderr
    assert cli.engine.stack_names() == []


def test_a_failed_create_keeps_state_and_says_how_to_destroy(
    cli: Harness, market: SpotMarket
) -> None:
    cli.readiness_error = OperationError("host 203.0.113.7 did not answer SSH within 40 min")
    result = cli.create("--spot")
    assert result.exit_code == 1
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert "did not answer SSH" in line
    assert f"mapt aws host destroy --project-name demo --backed-url {cli.backend}" in line
    assert "host-demo" in cli.engine.stack_names()
    assert cli.destroy().exit_code == 0
    assert cli.engine.stack_names() == []


KMS = "awskms://alias/mapt?region=us-east-1"


@pytest.mark.parametrize(
    ("flags", "provider"),
    [((), None), (("--secrets-provider", "passphrase"), None), (("--secrets-provider", KMS), KMS)],
    ids=["default", "passphrase", "kms"],
)
def test_the_destroy_command_a_failed_create_prints_destroys_as_printed(
    cli: Harness, market: SpotMarket, flags: tuple[str, ...], provider: str | None
) -> None:
    # A KMS-encrypted stack is read with its key: the command names it, quoted for the
    # shell ('?' is a glob), and only then; the default passphrase needs no flag.
    cli.readiness_error = OperationError("host 203.0.113.7 did not answer SSH within 40 min")
    failed = cli.create("--spot", *flags)
    assert failed.exit_code == 1
    (line,) = [x for x in failed.stderr.splitlines() if x.startswith("Error:")]
    command = shlex.split(line.split("remove it with: ", 1)[1])
    assert command[:4] == ["mapt", "aws", "host", "destroy"]
    assert ("--secrets-provider" in command) == (provider is not None)

    result = cli.invoke(*command[1:])
    assert result.exit_code == 0, result.output
    assert cli.engine_args[-1] == (provider, False)  # the engine destroy ran on
    assert cli.engine.stack_names() == []


def test_an_interrupted_destroy_prints_the_command_with_its_secrets_provider(
    cli: Harness, market: SpotMarket, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.create("--spot", "--secrets-provider", KMS).exit_code == 0

    def interrupted(ref: StackRef) -> bool:
        raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(cli.engine, "destroy", interrupted)
    result = cli.destroy("--secrets-provider", KMS)
    assert result.exit_code == 130, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert line.endswith(f"--backed-url {cli.backend} --secrets-provider '{KMS}'")


def test_options_come_from_mapt_environment_variables(cli: Harness, market: SpotMarket) -> None:
    env = {"MAPT_PROJECT_NAME": "from-env", "MAPT_BACKEND_URL": cli.backend, "MAPT_SPOT": "true"}
    result = cli.invoke(
        "aws", "host", "create", "--os", "fedora", "--cpus", "2", "--memory", "8",
        "--compute-families", FAMILIES, env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(cli.engine.stack_names()) == ["host-from-env", "spotOption-from-env"]
    assert cli.engine.exists(StackRef("from-env", "host", cli.backend))


def test_backend_url_alias_and_secrets_provider_reach_the_engine(
    cli: Harness, market: SpotMarket
) -> None:
    result = cli.invoke(
        "aws", "host", "create", "--os", "fedora", "--project-name", "alias",
        "--backend-url", cli.backend, "--secrets-provider", "awskms://alias/mapt?region=us-east-1",
        "--spot", "--cpus", "2", "--memory", "8", "--compute-families", FAMILIES, "--debug",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert cli.engine_args == [("awskms://alias/mapt?region=us-east-1", True)]
    assert cli.engine.exists(StackRef("alias", "host", cli.backend))


def test_s3_backend_without_passphrase_fails_before_anything_is_created(
    cli: Harness, market: SpotMarket, aws: ApiCallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    result = cli.invoke(
        "aws", "host", "create", "--os", "fedora", "--project-name", "demo",
        "--backed-url", "s3://ci-state/mapt", "--spot",
    )  # fmt: skip
    assert result.exit_code == 5
    assert "s3://ci-state/mapt" in result.stderr and "PULUMI_CONFIG_PASSPHRASE" in result.stderr
    assert aws.count() == 0 and cli.engine.stack_names() == []


# -- destroy --------------------------------------------------------------------------------


def test_destroy_removes_host_then_spot_choice_and_twice_is_fine(
    cli: Harness, market: SpotMarket
) -> None:
    assert cli.create("--spot").exit_code == 0

    first = cli.destroy()
    assert first.exit_code == 0, first.output
    assert "Destroyed host-demo, spotOption-demo" in first.stdout
    assert cli.engine.stack_names() == []

    second = cli.destroy()
    assert second.exit_code == 0
    assert "Nothing to destroy: project 'demo' has no stacks" in second.stdout


def test_destroy_of_a_project_that_never_existed_succeeds(cli: Harness) -> None:
    result = cli.destroy("--output", "json", project="never-made")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["nothing_to_destroy"] is True and document["destroyed"] == []


def test_destroy_of_a_stack_a_dead_run_left_locked(cli: Harness, market: SpotMarket) -> None:
    assert cli.create("--spot").exit_code == 0
    entry = cli.engine.lock(StackRef("demo", "host", cli.backend))

    locked = cli.destroy()
    assert locked.exit_code == 3
    assert "host-demo" in locked.stderr and "--force-destroy" in locked.stderr
    assert "host-demo" in cli.engine.stack_names()  # nothing destroyed

    forced = cli.destroy("--force-destroy", "--output", "json")
    assert forced.exit_code == 0, forced.output
    document = json.loads(forced.stdout)
    assert document["unlocked"] == [entry]
    assert document["destroyed"] == ["host-demo", "spotOption-demo"]
    assert cli.engine.stack_names() == []


# -- list -----------------------------------------------------------------------------------


def test_list_shows_every_project_with_its_placement(cli: Harness, market: SpotMarket) -> None:
    assert cli.create("--spot", project="one").exit_code == 0
    assert cli.create("--region", "us-west-2", project="two").exit_code == 0
    spot = cli.engine.outputs(StackRef("one", "spotOption", cli.backend))

    listed = cli.invoke("aws", "host", "list", "--backed-url", cli.backend, "--output", "json")
    assert listed.exit_code == 0, listed.output
    hosts = {h["project"]: h for h in json.loads(listed.stdout)["hosts"]}
    assert set(hosts) == {"one", "two"}
    assert hosts["one"]["region"] == spot["region"] and hosts["one"]["spot"] is True
    assert hosts["one"]["instance_types"] == spot["instance_types"]
    assert hosts["two"]["region"] == "us-west-2" and hosts["two"]["spot"] is False
    assert hosts["two"]["stacks"] == ["host-two"]

    table = cli.invoke("aws", "host", "list", "--backed-url", cli.backend)
    assert table.exit_code == 0
    assert "one" in table.stdout and "on-demand" in table.stdout and spot["az"] in table.stdout


def test_list_of_an_empty_backend(cli: Harness) -> None:
    result = cli.invoke("aws", "host", "list", "--backed-url", cli.backend)
    assert result.exit_code == 0 and "No projects in" in result.stdout


# -- hostile input --------------------------------------------------------------------------

HOSTILE: list[tuple[list[str], str]] = [
    (["--project-name", ""], "--project-name ''"),
    (["--project-name", "my project"], "'my project'"),
    (["--project-name", "a/b"], "'a/b'"),
    (["--project-name", "p" * 200], "is 200 characters long"),
    (["--project-name", "mapt-events"], "'mapt-events' is reserved: it is mapt's event intake"),
    (["--os", "solaris"], "'solaris'"),
    (["--tags", "a"], "'a'"),
    (["--tags", "=b"], "'=b'"),
    (["--tags", "k=1,k=2"], "'k'"),
    (["--cpus", "-2"], "-2"),
    (["--cpus", "0"], "0"),
    (["--cpus", "four"], "'four'"),
    (["--memory", "0"], "0"),
    (["--memory", "lots"], "'lots'"),
    (["--arch", "sparc"], "'sparc'"),
    (["--spot", "--spot-eviction-tolerance", "reckless"], "'reckless'"),
    (["--spot", "--spot-increase-rate", "-5"], "-5"),
    (["--spot", "--spot-excluded-regions", "mars-north-1"], "'mars-north-1'"),
    (["--spot-eviction-tolerance", "high"], "--spot-eviction-tolerance 'high'"),
    (["--backed-url", "ftp://state.example/mapt"], "'ftp://state.example/mapt'"),
    (["--backed-url", "s3:///prefix-only"], "'s3:///prefix-only'"),
    (["--secrets-provider", "rot13://key"], "'rot13://key'"),
    (["--os", "windows", "--airgap"], "--airgap"),
    (["--compute-sizes", "m5.large", "--cpus", "4"], "'m5.large'"),
    (["--version", "9.4; rm -rf /"], "'9.4; rm -rf /'"),
    (["--version", "$(reboot)"], "'$(reboot)'"),
    (["--disk-size", "5"], "5 GiB"),
    (["--service-endpoints", "s3,,ecr"], "'s3,,ecr'"),
    (["--region", "us east 1"], "'us east 1'"),
    (["--output", "yaml"], "'yaml'"),
    (["--timeout", "2d"], "'2d'"),
    (["--timeout", "-1h"], "'-1h'"),
    (["--lock-timeout", "soon"], "'soon'"),
    (["--spot", "--spot-max-attempts", "0"], "--spot-max-attempts 0"),
    (["--spot-fallback-on-demand"], "--spot-fallback-on-demand"),
    # Loose values: meaningless, and refused like any other bad value.
    (["--gpu-manufacturer", ""], "--gpu-manufacturer ''"),
    (["--region", ""], "--region ''"),
    (["--region", "../../etc"], "--region '../../etc'"),
    (["--region", "us-east-99x"], "--region 'us-east-99x'"),
    (["--cpus", "٤"], "'٤'"),
    (["--memory", "1e308"], "memory 1e+308 GiB is more than 65536 GiB"),
    (["--spot", "--memory", "1e308"], "memory 1e+308 GiB is more than 65536 GiB"),
    (["--cpus", "4097"], "cpus 4097 is more than 4096"),
    (["--gpus", "9" * 30], "is more than 16"),
    (["--disk-size", "9" * 30], "use 10 to 16384 GiB"),
    (["--spot", "--spot-increase-rate", "1e308"], "spot increase rate 1e+308"),
    (["--service-endpoints", "s3"], "--service-endpoints 's3' applies only with --airgap"),
    (["--conn-details-output", ""], "--conn-details-output ''"),
    (["--version", ""], "--version ''"),
    (["--version", "٤"], "fedora version '٤'"),
    (["--arch", ""], "--arch ''"),
]


@pytest.mark.parametrize(("flags", "named"), HOSTILE, ids=[" ".join(f) for f, _ in HOSTILE])
def test_hostile_input_is_exit_2_with_one_line_naming_it_and_nothing_created(
    cli: Harness, market: SpotMarket, aws: ApiCallLog, flags: list[str], named: str
) -> None:
    base = {"--os": "fedora", "--project-name": "demo", "--backed-url": cli.backend}
    for flag in flags[::2]:
        base.pop(flag, None)
    args = [x for pair in base.items() for x in pair]
    result = cli.invoke("aws", "host", "create", *args, *flags)

    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert named in lines[0]
    assert cli.engine.stack_names() == []
    assert not [c for c in aws.calls if c.operation.startswith(WRITES)]


def test_conn_details_output_that_is_a_file_is_refused_first(
    cli: Harness,
    market: SpotMarket,
    aws: ApiCallLog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a short name: error lines show 80 characters of a value
    a_file = Path("not-a-folder")
    a_file.write_text("x")
    result = cli.create("--spot", "--conn-details-output", str(a_file))
    assert result.exit_code == 2
    assert str(a_file) in result.stderr and "is a file" in result.stderr
    assert cli.engine.stack_names() == [] and aws.count() == 0


def test_a_connection_folder_unwritable_once_the_host_exists_says_how_to_destroy_it(
    cli: Harness, market: SpotMarket
) -> None:
    def folder_becomes_a_file(access: SshAccess) -> None:
        cli.conn.write_text("made a file while the host was created")

    cli._readiness = folder_becomes_a_file  # type: ignore[method-assign]
    result = cli.create("--spot", "--conn-details-output", str(cli.conn))
    assert result.exit_code == 1, result.output  # a billed host exists: not bad input
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert "cannot create the connection details folder" in line and "Not a directory" in line
    assert f"mapt aws host destroy --project-name demo --backed-url {cli.backend}" in line
    assert "host-demo" in cli.engine.stack_names()


@pytest.mark.parametrize("where", ["a-folder", "missing/github_output"])
def test_github_output_that_cannot_be_written_is_refused_before_any_aws_call(
    cli: Harness,
    market: SpotMarket,
    aws: ApiCallLog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # a short name: error lines show 80 characters of a value
    Path("a-folder").mkdir()
    result = cli.create("--spot", env={"GITHUB_OUTPUT": where})
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: GITHUB_OUTPUT={where} (from the environment) "), line
    assert cli.engine.stack_names() == [] and aws.count() == 0
    assert not Path("missing").exists()


def test_github_output_that_is_a_folder_is_refused_before_asking_a_server(
    cli: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a-folder").mkdir()
    # Nothing listens on port 9: a request sent would fail to connect (exit 1).
    result = cli.create(
        "--spot", "--server", "http://127.0.0.1:9",
        env={"GITHUB_OUTPUT": "a-folder", "MAPT_TOKEN": "mapt_test_token"},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: GITHUB_OUTPUT=a-folder (from the environment) is a")


def test_github_output_failing_once_the_host_is_made_is_exit_1_saying_how_to_destroy(
    cli: Harness, market: SpotMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github_output = tmp_path / "github_output"
    github_output.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    ready = cli._readiness

    def replaced_while_the_host_starts(access: SshAccess) -> None:
        ready(access)
        github_output.unlink()
        github_output.mkdir()

    monkeypatch.setattr(cli, "_readiness", replaced_while_the_host_starts)
    result = cli.create("--spot")
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert str(github_output) in line
    assert f"mapt aws host destroy --project-name demo --backed-url {cli.backend}" in line
    assert "host-demo" in cli.engine.stack_names()


def test_destroy_and_list_refuse_bad_input_too(cli: Harness) -> None:
    bad_name = cli.invoke("aws", "host", "destroy", "--project-name", "../etc")
    assert bad_name.exit_code == 2 and "'../etc'" in bad_name.stderr
    bad_url = cli.invoke("aws", "host", "list", "--backed-url", "gopher://x")
    assert bad_url.exit_code == 2 and "'gopher://x'" in bad_url.stderr
    missing = cli.invoke("aws", "host", "destroy")
    assert missing.exit_code == 2 and "--project-name" in missing.stderr


def test_no_host_command_takes_the_event_intake_project(
    cli: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its destroy would purge the event intake's state: the service's queues forgotten.
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "default-state"))
    ensure_event_intake(cli.engine, ["us-east-1"], backend_url=cli.backend)
    for command in ("destroy", "status", "costs"):
        result = cli.invoke(
            "aws", "host", command, "--project-name", EVENTS_PROJECT, "--backed-url", cli.backend
        )
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.splitlines()
        assert line == (
            "Error: --project-name 'mapt-events' is reserved: it is mapt's event intake "
            "project; give the host another name"
        )
    # The library's destroy, which purges the project's state, refuses it too.
    with pytest.raises(InputError, match="'mapt-events' is reserved"):
        destroy_host(
            RunContext(EVENTS_PROJECT, backend_url=cli.backend), engine=cli.engine,
            force=True, keep_state=False, lock_timeout=1,
        )  # fmt: skip
    assert event_intake_regions(cli.engine, cli.backend) == ["us-east-1"]


@pytest.mark.parametrize("name", ["bad name", "../x"])
def test_destroy_with_server_refuses_a_bad_project_name_as_the_local_one_does(
    cli: Harness, name: str
) -> None:
    """Not sent: the server has no such host, which would read as nothing to destroy."""
    missing = {"error": {"type": "NotFoundError", "message": "no host", "exit_code": 2}}
    local = cli.invoke("aws", "host", "destroy", "--project-name", name, "--output", "json")
    with stand_in_server(lambda method, path: (404, missing)) as server:
        remote = cli.invoke(
            "aws", "host", "destroy", "--project-name", name, "--output", "json",
            "--server", server.url, env={"MAPT_TOKEN": "mapt_test_token"},
        )  # fmt: skip
    assert remote.exit_code == local.exit_code == 2, remote.output
    assert remote.stderr == local.stderr and f"project name {name!r}" in remote.stderr
    assert remote.stdout == "" and server.requests == []


# -- reliability: failover, expiry, concurrency -----------------------------------------------

NO_CAPACITY = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
    "capacity available that matches your request. Launching EC2 instance failed."
)
PRICE_TOO_LOW = (
    "Could not launch Spot Instances. SpotMaxPriceTooLow - Your Spot request price of 0.001 "
    "is lower than the minimum required Spot request fulfillment price of 0.0167."
)


def test_a_refused_spot_launch_fails_over_to_the_next_candidate_without_a_new_scan(
    cli: Harness, market: SpotMarket
) -> None:
    cli.auto_scaling.refusals = [NO_CAPACITY]
    result = cli.create("--spot", "--output", "json")
    assert result.exit_code == 0, result.output

    spot = cli.engine.outputs(StackRef("demo", "spotOption", cli.backend))
    (failed,) = spot["failed"]
    assert failed["reason"] == "InsufficientInstanceCapacity"
    assert (failed["region"], failed["availability_zone"]) != (spot["region"], spot["az"])
    host = cli.engine.outputs(StackRef("demo", "host", cli.backend))
    assert host["availability_zone"] == spot["az"]  # deployed on the runner-up
    assert len(cli.auto_scaling.checked) == 2
    assert "InsufficientInstanceCapacity" in result.stderr  # the attempt is reported
    # One scan only: the failover used the kept candidates.
    calls = spot_calls(market)
    assert cli.create("--spot").exit_code == 0
    assert spot_calls(market) == calls and len(cli.auto_scaling.checked) == 3


def test_spot_attempts_exhausted_is_exit_4_listing_every_attempt(
    cli: Harness, market: SpotMarket
) -> None:
    cli.auto_scaling.refusals = [PRICE_TOO_LOW, NO_CAPACITY, NO_CAPACITY]
    result = cli.create("--spot", "--spot-max-attempts", "2")

    assert result.exit_code == 4, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert "after 2 attempt(s)" in line
    assert "SpotMaxPriceTooLow" in line and "InsufficientInstanceCapacity" in line
    assert "--spot-fallback-on-demand" in line
    assert "host-demo" not in cli.engine.stack_names()  # no machine left half-made
    assert len(cli.auto_scaling.checked) == 2


def test_on_demand_fallback_after_spot_fails_and_is_kept(cli: Harness, market: SpotMarket) -> None:
    cli.auto_scaling.refusals = [NO_CAPACITY, NO_CAPACITY]
    result = cli.create("--spot", "--spot-max-attempts", "2", "--spot-fallback-on-demand")
    assert result.exit_code == 0, result.output
    assert "capacity:          on-demand" in result.stdout
    spot = cli.engine.outputs(StackRef("demo", "spotOption", cli.backend))
    assert spot["spot_price"] is None and len(spot["failed"]) == 2
    assert spot["region"] == spot["failed"][0]["region"]
    host = cli.engine.outputs(StackRef("demo", "host", cli.backend))
    assert host["spot"] is False and host["region"] == spot["region"]

    calls, checks = spot_calls(market), len(cli.auto_scaling.checked)
    again = cli.create("--spot", "--spot-fallback-on-demand")
    assert again.exit_code == 0, again.output
    assert "capacity:          on-demand" in again.stdout  # the working choice is kept
    assert spot_calls(market) == calls and len(cli.auto_scaling.checked) == checks


def test_two_creates_of_one_project_at_once_make_one_spot_choice(
    cli: Harness, market: SpotMarket
) -> None:
    import threading

    from mapt.allocation import AllocationArgs, ComputeRequest, SpotArgs
    from mapt.core import RunContext, StateLockedError
    from mapt.hosts import HostChecks, create_host
    from mapt.targets.aws import HostRequest

    context = RunContext(project_name="demo", backend_url=cli.backend)
    args = AllocationArgs(
        compute_request=ComputeRequest(cpus=2, memory_gib=8, compute_families=FAMILIES.split(",")),
        ami_name=FEDORA_41,
        ami_owner=FEDORA_OWNER,
        spot=SpotArgs(),
    )
    first_is_deploying, second_gave_up = threading.Event(), threading.Event()

    def slow_readiness(access: SshAccess) -> None:
        first_is_deploying.set()
        assert second_gave_up.wait(30)

    outcomes: list[object] = []

    def first() -> None:
        checks = HostChecks(launch=cli.auto_scaling.launch, readiness=slow_readiness)
        outcomes.append(
            create_host(
                context, args, HostRequest("fedora"), engine=cli.engine, conn_dir=None,
                checks=checks, lock_timeout=30,
            )
        )  # fmt: skip

    thread = threading.Thread(target=first)
    thread.start()
    assert first_is_deploying.wait(60)
    try:
        with pytest.raises(StateLockedError, match="project 'demo' is locked by create by"):
            create_host(
                context, args, HostRequest("fedora"), engine=cli.engine, conn_dir=None,
                checks=HostChecks(launch=cli.auto_scaling.launch, readiness=lambda a: None),
                lock_timeout=0.2,
            )  # fmt: skip
    finally:
        second_gave_up.set()
        thread.join()
    assert len(outcomes) == 1
    assert sorted(cli.engine.stack_names()) == ["host-demo", "spotOption-demo"]
    scored = [r for c in market.calls_to("GetSpotPlacementScores") for r in c.params["RegionNames"]]
    assert scored and len(scored) == len(set(scored))  # one scan, one choice


def test_force_destroy_breaks_a_project_lock_a_dead_run_left(
    cli: Harness, market: SpotMarket, tmp_path: Path
) -> None:
    assert cli.create("--spot").exit_code == 0
    note = tmp_path / "state/.mapt/locks/demo.json"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(
        '{"user": "runner", "host": "gh-7", "pid": 4242, "operation": "create",'
        ' "since": "2026-11-22T08:00:00Z"}'
    )
    result = cli.destroy("--force-destroy")
    assert result.exit_code == 0, result.output
    assert "create by runner@gh-7 (pid 4242)" in result.stderr
    assert not note.exists() and cli.engine.stack_names() == []


def test_a_full_disk_while_taking_the_lock_is_one_error_line(
    cli: Harness, market: SpotMarket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path / "state")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    result = cli.create("--spot")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: cannot write the project lock note ")
    assert str(tmp_path / "state/.mapt/locks/demo.json") in line and "(ENOSPC)" in line
    assert cli.engine.stack_names() == []


def test_a_launch_refused_for_another_reason_does_not_fail_over(
    cli: Harness, market: SpotMarket
) -> None:
    cli.auto_scaling.refusals = [
        "Launching EC2 instance failed. InvalidParameterValue - The image id does not exist."
    ]
    result = cli.create("--spot")
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert "InvalidParameterValue" in line and "mapt aws host destroy" in line
    assert len(cli.auto_scaling.checked) == 1  # no other offer tried
    assert "host-demo" in cli.engine.stack_names()  # kept for destroy
