"""DryRunEngine and InMemoryEngine run real pulumi_aws programs under mocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from mapt.core import NoCapacityError, OperationError, StateLockedError
from mapt.stacks import (
    DryRunEngine,
    Engine,
    InMemoryEngine,
    StackNotFoundError,
    StackRef,
    StackSummary,
)
from tests.harness.pulumi_mocks import FAKE_AMI_ID, default_answers
from tests.harness.rounds import ROUND_LATENCY, CallTimeline, counting_clients
from tests.harness.spot_market import ApiCallLog, installed
from tests.stacks.test_inventory import checkpoint

REF = StackRef("demo", "host")


def host_program() -> None:
    """A small network and host, as a target program would declare them."""
    import pulumi_aws as aws

    region = pulumi.Config("aws").require("region")
    ami = aws.ec2.get_ami_output(
        most_recent=True, owners=["309956199498"], filters=[{"name": "name", "values": ["RHEL-9*"]}]
    )
    vpc = aws.ec2.Vpc("network", cidr_block="10.0.0.0/16")
    subnet = aws.ec2.Subnet("public", vpc_id=vpc.id, cidr_block="10.0.1.0/24")
    host = aws.ec2.Instance(
        "host", ami=ami.id, instance_type="m6i.large", subnet_id=subnet.id, tags={"Name": "host"}
    )
    pulumi.export("host", host.id)
    pulumi.export("region", region)
    pulumi.export("password", pulumi.Output.secret("s3cr3t-password"))


def test_engines_satisfy_the_protocol() -> None:
    assert isinstance(DryRunEngine(), Engine) and isinstance(InMemoryEngine(), Engine)


def test_dry_run_reports_resources_and_outputs_and_keeps_no_state() -> None:
    engine = DryRunEngine(answers=default_answers())
    outputs = engine.up(REF, host_program, config={"aws:region": "eu-north-1"})

    assert outputs == {"host": "host-id", "region": "eu-north-1", "password": "s3cr3t-password"}
    run = engine.last_run
    assert [(r.type, r.name) for r in run.resources] == [
        ("aws:ec2/vpc:Vpc", "network"),
        ("aws:ec2/subnet:Subnet", "public"),
        ("aws:ec2/instance:Instance", "host"),
    ]
    host = run.resources[2].inputs
    assert (host["ami"], host["instanceType"], host["subnetId"]) == (
        FAKE_AMI_ID,
        "m6i.large",
        "public-id",
    )
    assert run.outputs["password"].secret
    assert engine.runs[0].ref == REF and engine.runs[0].operation == "up"
    # Nothing was stored: the stack still does not exist.
    assert engine.exists(REF) is False
    with pytest.raises(StackNotFoundError):
        engine.outputs(REF)
    assert engine.destroy(REF) is False and engine.destroyed == []


def test_dry_run_preview_lists_what_would_be_created() -> None:
    preview = DryRunEngine(answers=default_answers()).preview(
        REF, host_program, config={"aws:region": "eu-north-1"}
    )
    assert preview.stack_name == "host-demo"
    assert preview.changes == {"create": 3}
    assert [s.name for s in preview.steps] == ["network", "public", "host"]


def test_dry_run_reads_existing_state_through_its_reader() -> None:
    state = InMemoryEngine(answers=default_answers())
    spot = StackRef("demo", "spotOption")
    state.up(spot, lambda: pulumi.export("az", "eu-north-1b"))
    dry = DryRunEngine(reader=state, answers=default_answers())
    assert dry.exists(spot) and dry.outputs(spot) == {"az": "eu-north-1b"}
    assert dry.preview(spot, lambda: pulumi.export("az", "x")).changes == {}
    assert dry.destroy(spot) is True and dry.destroyed == [spot]
    assert state.exists(spot)  # a dry destroy destroys nothing


class _UnreadableState:
    """A reader whose backend holds this stack's checkpoint, cut short."""

    def list_stacks(self, backend_url: str | None) -> list[StackSummary]:
        return [
            StackSummary(
                project="demo",
                stack_name="spotOption-demo",
                updated_at=None,
                resource_count=0,
                unreadable="not JSON (truncated)",
                location="/state/.pulumi/stacks/demo/spotOption-demo.json",
            )
        ]


def test_dry_run_refuses_state_it_cannot_read_instead_of_taking_it_as_absent() -> None:
    dry = DryRunEngine(reader=_UnreadableState(), answers=default_answers())  # type: ignore[arg-type]
    spot = StackRef("demo", "spotOption")
    with pytest.raises(OperationError, match=r"spotOption-demo\.json: not JSON"):
        dry.exists(spot)
    # Another project's stacks are not this one's problem.
    assert dry.exists(StackRef("other", "spotOption")) is False


def test_program_failures_are_operation_errors_unless_already_mapt_errors() -> None:
    engine = DryRunEngine(answers=default_answers())
    with pytest.raises(OperationError, match="host-demo failed: ConfigMissingError"):
        engine.up(REF, host_program)  # aws:region not given

    def no_capacity() -> None:
        raise NoCapacityError("no spot capacity in eu-north-1")

    with pytest.raises(NoCapacityError):
        engine.up(REF, no_capacity)


def test_in_memory_engine_persists_outputs_across_a_whole_flow() -> None:
    engine = InMemoryEngine(answers=default_answers())
    config = {"aws:region": "eu-north-1"}
    assert engine.exists(REF) is False

    outputs = engine.up(REF, host_program, config=config)

    assert engine.exists(REF) is True
    assert (
        engine.outputs(REF)
        == outputs
        == {
            "host": "host-id",
            "region": "eu-north-1",
            "password": "s3cr3t-password",
        }
    )
    assert engine.config(REF) == config
    assert [r.name for r in engine.resources(REF)] == ["network", "public", "host"]
    assert engine.preview(REF, host_program, config=config).changes == {"same": 3}
    # Another project's stack of the same kind is another stack.
    other = StackRef("other", "host")
    assert engine.exists(other) is False
    assert engine.destroy(REF) is True
    assert engine.exists(REF) is False
    with pytest.raises(StackNotFoundError):
        engine.outputs(REF)
    assert engine.destroy(REF) is False


def test_in_memory_preview_diffs_against_the_stored_stack() -> None:
    engine = InMemoryEngine(answers=default_answers())
    config = {"aws:region": "eu-north-1"}
    engine.up(REF, host_program, config=config)

    def smaller() -> None:
        import pulumi_aws as aws

        aws.ec2.Vpc("network", cidr_block="10.1.0.0/16")

    preview = engine.preview(REF, smaller, config=config)
    assert [(s.op, s.name) for s in preview.steps] == [
        ("update", "network"),
        ("delete", "public"),
        ("delete", "host"),
    ]


def test_in_memory_locks_behave_like_a_dead_runs_lock() -> None:
    engine = InMemoryEngine()
    engine.up(REF, lambda: pulumi.export("n", 1))
    entry = engine.lock(REF)
    with pytest.raises(StateLockedError, match="host-demo is locked by another run"):
        engine.destroy(REF)
    assert DryRunEngine(reader=engine).force_unlock(REF) == [entry]  # reported, not removed
    assert engine.force_unlock(REF) == [entry]
    assert engine.destroy(REF) is True
    assert engine.force_unlock(REF) == []


def test_in_memory_a_failed_up_leaves_the_stack_as_the_pulumi_engine_does() -> None:
    """``stack init`` runs before ``up``: the stack exists, without outputs, with what was
    created before the failure (tests/stacks/real_engine/test_failures.py shows the same
    on the real CLI)."""
    import pulumi_aws as aws

    def failing_after_the_network() -> None:
        vpc = aws.ec2.Vpc("network", cidr_block="10.0.0.0/16")
        pulumi.export("vpc", vpc.id.apply(_no_capacity))

    engine = InMemoryEngine(answers=default_answers())
    with pytest.raises(NoCapacityError):
        engine.up(REF, failing_after_the_network)
    assert engine.exists(REF) and engine.outputs(REF) == {}
    assert [(r.type, r.name) for r in engine.resources(REF)] == [("aws:ec2/vpc:Vpc", "network")]
    assert engine.destroy(REF) is True and not engine.exists(REF)

    engine.up(REF, host_program, config={"aws:region": "eu-north-1"})
    with pytest.raises(NoCapacityError):
        engine.up(REF, failing_after_the_network)
    assert engine.outputs(REF) == {}  # the stack's outputs are not trusted after a failure
    assert len(engine.resources(REF)) == 3  # network, public, host: nothing deleted


def _no_capacity(_: object) -> object:
    raise NoCapacityError("no spot capacity for m6i.large")


def test_a_dry_run_reads_a_200_stack_s3_backend_once_whatever_it_asks(aws: ApiCallLog) -> None:
    # A dry create asks whether the spot choice and the host exist, and their outputs:
    # each question used to list the bucket and read all 200 checkpoints again.
    import boto3

    from mapt.stacks import PulumiEngine

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ci-state")
    for index in range(200):
        project = "demo" if index == 0 else f"p{index:03d}"
        body = checkpoint(project, f"spotOption-{project}", {"az": "eu-north-1b"}, 0)
        s3.put_object(Bucket="ci-state", Key=f".pulumi/stacks/{project}/spotOption-{project}.json",
                      Body=body)  # fmt: skip
    url = "s3://ci-state?region=us-east-1"
    spot, host = StackRef("demo", "spotOption", url), StackRef("demo", "host", url)
    timeline = CallTimeline(latency=ROUND_LATENCY)
    boto3.DEFAULT_SESSION = None  # no S3 client yet, as in a fresh process
    dry = DryRunEngine(reader=PulumiEngine(), answers=default_answers())

    following = timeline.following_dependencies()
    with counting_clients() as created, installed(timeline.handlers()), following:
        assert dry.exists(spot) and dry.outputs(spot) == {"az": "eu-north-1b"}
        assert not dry.exists(host) and not dry.exists(host)
        assert len(dry.list_stacks(url)) == 200

    assert created["s3"] == 1
    assert timeline.count("s3") == 202  # stacks and locks listed, 200 checkpoints read
    # By dependency, not by wall-clock order: on a loaded machine a read that started
    # late for want of CPU counted a round later (4 rounds once).
    assert timeline.dependency_rounds("s3") == 2, timeline.dependency_rounds("s3")


_MANY_RUNS = """
import gc
import pulumi
from mapt.stacks import InMemoryEngine, StackRef

def program():
    for index in range(12):
        pulumi.CustomResource("test:index:Thing", f"thing-{index}", {"index": index})
    pulumi.export("count", 12)

def failing():
    pulumi.CustomResource("test:index:Thing", "first", {})
    raise RuntimeError("the program broke")

engine = InMemoryEngine()
for name in ("a", "b", "c"):
    engine.up(StackRef(project="demo", name=name), program)
try:
    engine.up(StackRef(project="demo", name="d"), failing)
except Exception:
    pass
gc.collect()
print("done", flush=True)
"""


def test_program_runs_leave_no_event_loop_behind_to_warn_at_exit(tmp_path: Path) -> None:
    # The mock monitor's threads each got an event loop nobody closed; the garbage
    # collector warned of each, up to interpreter exit, after a command's last line.
    script = tmp_path / "runs.py"
    script.write_text(_MANY_RUNS)
    ran = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "done\n"
    assert "unclosed event loop" not in ran.stderr and "Exception ignored" not in ran.stderr
