"""A newcomer's first runs: read-only commands need no Pulumi CLI and write nothing;
``create`` checks every prerequisite before any AWS call or lock.

These run the real services (the Pulumi engine, no engine handed in) with no ``pulumi``
anywhere: ``PATH``, ``HOME`` and ``PULUMI_HOME`` point at empty temporary folders.
EC2 is moto with the replayed spot market; the state backend is a file backend.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapt.allocation import AllocationResult
from mapt.allocation._spot_stack import spot_choice_outputs
from mapt.cli import app
from tests.cli.host_harness import FAMILIES, FEDORA_41, FEDORA_OWNER, Harness, spot_calls
from tests.harness.images import publish_image
from tests.harness.spot_market import ApiCallLog, SpotMarket
from tests.stacks.test_inventory import checkpoint


@dataclass
class Machine:
    """A machine without the Pulumi CLI: its home, Pulumi's home, temp and state folders."""

    root: Path
    backend: str

    @property
    def watched(self) -> list[Path]:
        return [self.root / name for name in ("home", "pulumi-home", "tmp", "state", "default")]

    def files(self) -> set[Path]:
        """Everything under the watched folders (the state folder need not exist)."""
        return {path for top in self.watched if top.exists() for path in top.rglob("*")}

    def run(self, *args: str, env: dict[str, str] | None = None) -> object:
        """``mapt`` with the real services: no engine handed in."""
        return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
    for name in ("home", "pulumi-home", "tmp", "bin"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "default"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "GITHUB_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    from mapt.stacks import find_pulumi

    assert find_pulumi() is None  # the premise: no Pulumi CLI anywhere
    yield Machine(tmp_path, f"file://{tmp_path / 'state'}")


def create(machine: Machine, *extra: str) -> object:
    return machine.run(
        "aws", "host", "create", "--os", "fedora", "--project-name", "demo",
        "--backed-url", machine.backend, "--cpus", "2", "--memory", "8",
        "--compute-families", FAMILIES, *extra,
    )  # fmt: skip


# -- dry runs ---------------------------------------------------------------------------------


def test_spot_dry_run_needs_no_pulumi_cli_and_writes_nothing(
    machine: Machine, market: SpotMarket
) -> None:
    result = create(machine, "--spot", "--dry-run", "--output", "json")

    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    document = json.loads(result.stdout)  # type: ignore[attr-defined]
    chosen = document["allocation"]
    assert chosen["region"] and chosen["availability_zone"]
    assert document["hourly_price"] == chosen["spot_price"] > 0
    assert {"aws:ec2/vpc:Vpc", "aws:autoscaling/group:Group"} <= {
        r["type"] for r in document["resources"]
    }
    assert machine.files() == set()  # no passphrase, lock, workspace or state file
    logs = result.stderr  # type: ignore[attr-defined]
    assert "would keep it in stack spotOption-demo" in logs and "; kept in" not in logs


def test_on_demand_dry_run_needs_no_pulumi_cli_and_shows_its_hourly_price(
    machine: Machine, market: SpotMarket
) -> None:
    result = create(machine, "--region", "eu-north-1", "--dry-run", "--output", "json")

    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    document = json.loads(result.stdout)  # type: ignore[attr-defined]
    chosen = document["allocation"]
    assert chosen["region"] == "eu-north-1" and chosen["spot_price"] is None
    prices = [
        row.on_demand_price
        for row in market.rows
        if row.region == "eu-north-1" and row.instance_type in chosen["instance_types"]
    ]
    assert document["hourly_price"] == pytest.approx(max(prices))
    assert machine.files() == set()

    text = create(machine, "--region", "eu-north-1", "--dry-run")
    assert text.exit_code == 0, text.output  # type: ignore[attr-defined]
    stdout = text.stdout  # type: ignore[attr-defined]
    assert "region:            eu-north-1" in stdout and "availability zone: eu-north-1" in stdout
    assert f"estimated cost:    {max(prices):.4f} USD/h" in stdout
    assert "aws:ec2/vpc:Vpc" in stdout


def test_on_demand_dry_run_says_why_the_price_is_unknown(
    machine: Machine, market: SpotMarket
) -> None:
    market.pricing_error = "AccessDeniedException"
    result = create(machine, "--region", "eu-north-1", "--dry-run")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert (
        "estimated cost:    unknown: the Pricing API did not answer (AccessDeniedException)"
        in result.stdout  # type: ignore[attr-defined]
    )


def test_dry_run_reads_a_kept_spot_choice_from_state_without_the_cli(
    machine: Machine, market: SpotMarket
) -> None:
    kept = AllocationResult(
        region="eu-north-1",
        availability_zone="eu-north-1a",
        availability_zone_id="eun1-az1",
        instance_types=("m5.large",),
        spot_price=0.0321,
        max_price=0.0417,
        score=9,
    )
    state = machine.root / "state" / ".pulumi" / "stacks" / "demo" / "spotOption-demo.json"
    state.parent.mkdir(parents=True)
    state.write_bytes(checkpoint("demo", "spotOption-demo", spot_choice_outputs(kept), 0))
    before = machine.files()

    result = create(machine, "--spot", "--dry-run", "--output", "json")

    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    document = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert document["allocation"]["availability_zone"] == "eu-north-1a"
    assert document["hourly_price"] == 0.0321
    assert spot_calls(market) == 0  # read from the checkpoint, not re-made
    assert machine.files() == before


# -- destroy ----------------------------------------------------------------------------------


def test_destroy_of_an_unknown_project_needs_no_cli_and_writes_nothing(machine: Machine) -> None:
    result = machine.run(
        "aws", "host", "destroy", "--project-name", "never-existed", "--backed-url",
        machine.backend,
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "Nothing to destroy" in result.stdout  # type: ignore[attr-defined]
    assert machine.files() == set()

    default = machine.run("aws", "host", "destroy", "--project-name", "never-existed")
    assert default.exit_code == 0, default.output  # type: ignore[attr-defined]
    assert machine.files() == set()


def test_destroy_without_stacks_still_purges_what_a_keep_state_destroy_left(
    machine: Machine,
) -> None:
    history = machine.root / "state" / ".pulumi" / "history" / "demo" / "host-demo"
    history.mkdir(parents=True)
    (history / "host-demo-1.history.json").write_text("{}")
    destroy = ["aws", "host", "destroy", "--project-name", "demo", "--backed-url", machine.backend]

    kept = machine.run(*destroy, "--keep-state")
    assert kept.exit_code == 0 and (history / "host-demo-1.history.json").exists()

    purged = machine.run(*destroy, "--output", "json")
    assert purged.exit_code == 0, purged.output  # type: ignore[attr-defined]
    document = json.loads(purged.stdout)  # type: ignore[attr-defined]
    assert document["nothing_to_destroy"] is True and document["purged_state_files"] == 1
    assert not history.exists()


def test_destroy_of_a_project_with_state_checks_the_cli_before_the_lock(machine: Machine) -> None:
    state = machine.root / "state" / ".pulumi" / "stacks" / "demo" / "host-demo.json"
    state.parent.mkdir(parents=True)
    state.write_bytes(checkpoint("demo", "host-demo", {"region": "eu-north-1"}, 3))
    before = machine.files()

    result = machine.run("aws", "host", "destroy", "--project-name", "demo", "--backed-url",
                         machine.backend)  # fmt: skip

    assert result.exit_code == 5, result.output  # type: ignore[attr-defined]
    (line,) = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert line.startswith("Error: the Pulumi CLI was not found")
    assert machine.files() == before  # no lock left, nothing removed


# -- create: prerequisites first --------------------------------------------------------------


def test_create_without_the_cli_is_exit_5_before_any_aws_call_or_lock(
    machine: Machine, aws: ApiCallLog
) -> None:
    result = create(machine, "--spot")

    assert result.exit_code == 5, result.output  # type: ignore[attr-defined]
    (line,) = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert line.startswith("Error: the Pulumi CLI was not found") and "mapt setup pulumi" in line
    assert "kept in state" not in line
    assert aws.calls == []
    assert machine.files() == set()


def test_create_without_aws_credentials_is_exit_5_before_any_aws_call(
    cli: Harness, aws: ApiCallLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup

    for extra in (["--spot"], ["--spot", "--dry-run"]):
        result = cli.create(*extra)
        assert result.exit_code == 5, result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith("Error: no AWS credentials were found")
    assert aws.calls == [] and cli.engine.stack_names() == []


def unusable_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    # Relative to the test's folder: an absolute one under a long TMPDIR (or an xdist
    # worker's basetemp) is longer than the 80 characters an error line shows of it.
    monkeypatch.chdir(tmp_path)
    Path("a-file").write_text("x")
    return ["/proc/x", "", "a-file", "a-file/below"]


def test_unusable_connection_folders_are_exit_2_before_any_aws_call(
    cli: Harness, aws: ApiCallLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in unusable_folders(tmp_path, monkeypatch):
        result = cli.create("--spot", "--conn-details-output", folder)
        assert result.exit_code == 2, (folder, result.output)
        (line,) = result.stderr.splitlines()
        assert line.startswith("Error: ") and repr(folder) in line, line
    assert aws.calls == [] and cli.engine.stack_names() == []


def test_a_read_only_connection_folder_is_refused() -> None:
    """As a user who cannot write there: root writes anywhere, so the check runs
    without the capabilities that let it (util-linux's setpriv)."""
    base = Path(tempfile.mkdtemp(prefix="mapt-read-only-"))
    drop = "--bounding-set=-dac_override,-dac_read_search"
    as_root = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", drop, "--"]
    without_override = as_root if os.geteuid() == 0 else []
    try:
        read_only = base / "read-only"
        read_only.mkdir(mode=0o555)
        code = (
            "import sys\n"
            "from mapt.core import InputError\n"
            "from mapt.targets import check_connection_folder\n"
            "for folder in sys.argv[1:]:\n"
            "    try:\n"
            "        check_connection_folder(folder)\n"
            "    except InputError as error:\n"
            "        print(error)\n"
        )
        done = subprocess.run(
            [
                *without_override,
                sys.executable,
                "-c",
                code,
                str(read_only),
                str(read_only / "conn"),
            ],
            capture_output=True,
            text=True,
            cwd=str(Path(__file__).resolve().parents[2]),
            check=False,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 2, done.stdout
        assert all("is not writable" in line and "Permission denied" in line for line in lines)
        assert list(read_only.iterdir()) == []
    finally:
        shutil.rmtree(base)


# -- the architecture follows the named types ---------------------------------------------------

FEDORA_41_ARM = "Fedora-Cloud-Base-AmazonEC2.aarch64-41-20261001.0"
ARM_TYPES = {"m6g.large", "m7g.large"}


def spot_price(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(app, ["aws", "spot-price", *args], env=env)


def one_error_line(result: object, code: int = 2) -> str:
    assert result.exit_code == code, result.output  # type: ignore[attr-defined]
    (line,) = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert line.startswith("Error: ")
    return line


def test_spot_price_follows_the_architecture_of_named_types(market: SpotMarket) -> None:
    market.default_score = 8
    arm = spot_price("--compute-sizes", "m6g.large,m7g.large", "--output", "json")
    assert arm.exit_code == 0, arm.output  # type: ignore[attr-defined]
    offers = json.loads(arm.stdout)["offers"]  # type: ignore[attr-defined]
    assert offers and all(set(o["instance_types"]) <= ARM_TYPES for o in offers)

    x86 = spot_price("--compute-sizes", "m5.large", "--output", "json")
    assert x86.exit_code == 0, x86.output  # type: ignore[attr-defined]
    assert {t for o in json.loads(x86.stdout)["offers"] for t in o["instance_types"]} == {  # type: ignore[attr-defined]
        "m5.large"
    }

    mixed = one_error_line(spot_price("--compute-sizes", "m5.large,m6g.large"))
    assert "arm64: m6g.large" in mixed and "x86_64: m5.large" in mixed

    contradicted = one_error_line(spot_price("--arch", "x86_64", "--compute-sizes", "m6g.large"))
    assert "'m6g.large' is arm64" in contradicted and "pass --arch arm64" in contradicted.lower()


def test_host_create_follows_the_architecture_of_named_types(
    cli: Harness, market: SpotMarket, aws: ApiCallLog
) -> None:
    market.default_score = 8
    for region in ("us-east-1", "eu-north-1"):
        publish_image(region, FEDORA_41_ARM, FEDORA_OWNER, architecture="arm64")
    base = ["aws", "host", "create", "--os", "fedora", "--project-name", "demo",
            "--backed-url", cli.backend, "--dry-run", "--output", "json"]  # fmt: skip

    arm = cli.invoke(*base, "--spot", "--compute-sizes", "m6g.large,m7g.large")
    assert arm.exit_code == 0, arm.output
    document = json.loads(arm.stdout)
    assert set(document["allocation"]["instance_types"]) <= ARM_TYPES
    assert [image["name"] for image in document["images"]] == [FEDORA_41_ARM]

    x86 = cli.invoke(*base, "--region", "us-east-1", "--compute-sizes", "m5.large")
    assert x86.exit_code == 0, x86.output
    assert [image["name"] for image in json.loads(x86.stdout)["images"]] == [FEDORA_41]

    mixed = one_error_line(cli.invoke(*base, "--spot", "--compute-sizes", "m5.large,m6g.large"))
    assert "arm64: m6g.large" in mixed and "x86_64: m5.large" in mixed

    contradicted = one_error_line(
        cli.invoke(*base, "--spot", "--arch", "x86_64", "--compute-sizes", "m6g.large")
    )
    assert "pass --arch arm64" in contradicted.lower()
    assert cli.engine.stack_names() == []


# -- output read in CI logs: nothing cut -------------------------------------------------------

NARROW = {"COLUMNS": "80"}


def test_spot_price_table_through_a_pipe_shows_every_region_and_zone_whole(
    market: SpotMarket,
) -> None:
    args = ["--cpus", "2", "--memory", "8", "--compute-families", FAMILIES]
    offers = json.loads(spot_price(*args, "--output", "json").stdout)["offers"]  # type: ignore[attr-defined]
    table = spot_price(*args, env=NARROW)
    assert table.exit_code == 0, table.output  # type: ignore[attr-defined]
    for offer in offers:
        for value in (offer["region"], offer["availability_zone"], offer["availability_zone_id"]):
            assert value in table.stdout, value  # type: ignore[attr-defined]
        assert ", ".join(offer["instance_types"]) in table.stdout  # type: ignore[attr-defined]


def test_dry_run_resources_and_host_list_through_a_pipe_are_whole(
    cli: Harness, market: SpotMarket
) -> None:
    planned = json.loads(cli.create("--spot", "--dry-run", "--output", "json").stdout)
    text = cli.invoke(
        "aws", "host", "create", "--os", "fedora", "--project-name", "demo",
        "--backed-url", cli.backend, "--cpus", "2", "--memory", "8",
        "--compute-families", FAMILIES, "--spot", "--dry-run", env=NARROW,
    )  # fmt: skip
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    for resource in planned["resources"]:
        assert any(resource["type"] in line and resource["name"] in line for line in lines), (
            resource
        )

    assert cli.create("--spot", project="a-rather-long-project-name-for-the-list").exit_code == 0
    listed = json.loads(
        cli.invoke("aws", "host", "list", "--backed-url", cli.backend, "--output", "json").stdout
    )["hosts"]
    table = cli.invoke("aws", "host", "list", "--backed-url", cli.backend, env=NARROW)
    assert table.exit_code == 0, table.output
    for host in listed:
        for value in (host["project"], host["region"], host["availability_zone"], host["host"]):
            assert value in table.stdout, value
        assert ", ".join(host["instance_types"]) in table.stdout


# -- values from the environment, long values ----------------------------------------------------


def test_errors_name_the_environment_variable_a_value_came_from(
    cli: Harness, market: SpotMarket, aws: ApiCallLog
) -> None:
    version = one_error_line(cli.create("--spot", env={"MAPT_VERSION": "0.1.0"}))
    assert version.startswith("Error: MAPT_VERSION=0.1.0 (from the environment): ")
    assert "'0.1.0'" in version

    cpus = one_error_line(spot_price(env={"MAPT_CPUS": "٤"}))
    assert cpus.startswith("Error: MAPT_CPUS=٤ (from the environment): ")

    rate = one_error_line(spot_price(env={"MAPT_SPOT_INCREASE_RATE": "1e308"}))
    assert rate.startswith("Error: MAPT_SPOT_INCREASE_RATE=1e308 (from the environment): ")

    region = one_error_line(spot_price(env={"AWS_REGION": "../../etc"}))
    assert region.startswith("Error: AWS_REGION=../../etc (from the environment): ")

    # The same values on the command line are named by their flag, with no variable.
    flag = one_error_line(spot_price("--cpus", "٤"))
    assert "--cpus" in flag and "environment" not in flag
    assert not [c for c in aws.calls if c.operation != "DescribeInstanceTypes"]


def test_a_long_value_is_cut_to_80_characters_in_the_error(cli: Harness, aws: ApiCallLog) -> None:
    for result in (
        spot_price("--region", "x" * 5000),
        cli.create("--spot", "--spot-excluded-regions", "y" * 5000),
        cli.create("--spot", env={"MAPT_VERSION": "v" * 5000}),
    ):
        line = one_error_line(result)
        assert "…" in line and len(line) < 400, line[:200]
    assert aws.calls == []


def test_spot_price_honours_aws_region(api_calls: ApiCallLog, market: SpotMarket) -> None:
    args = ["--cpus", "2", "--memory", "8", "--compute-families", FAMILIES, "--output", "json"]
    result = spot_price(*args, env={"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "us-west-2"})
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    asked = {c.region for c in api_calls.calls if c.operation == "DescribeRegions"}
    assert asked == {"eu-north-1"}


def test_host_list_through_a_real_pipe_at_80_columns_cuts_nothing(tmp_path: Path) -> None:
    """The real entry point, its stdout a pipe: long rows stay whole, one per line."""
    project = "a-project-name-of-forty-characters-max00"
    outputs = {
        "region": "ap-northeast-1",
        "availability_zone": "ap-northeast-1d",
        "instance_types": [f"{family}.2xlarge" for family in FAMILIES.split(",")],
        "spot": True,
        "host": "ec2-203-0-113-7.ap-northeast-1.compute.amazonaws.com",
    }
    state = tmp_path / "state" / ".pulumi" / "stacks" / project / f"host-{project}.json"
    state.parent.mkdir(parents=True)
    state.write_bytes(checkpoint(project, f"host-{project}", outputs, 2))
    env = {**os.environ, "COLUMNS": "80", "MAPT_STATE_DIR": str(tmp_path / "default")}

    done = subprocess.run(
        [sys.executable, "-m", "mapt", "aws", "host", "list", "--backed-url",
         f"file://{tmp_path / 'state'}"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if project in line]
    types = ", ".join(outputs["instance_types"])  # type: ignore[arg-type]
    for value in (project, "ap-northeast-1", "ap-northeast-1d", types, outputs["host"]):
        assert value in row, value
