"""``mapt.hosts.AwsHostTarget``: the verbs the CLI and the service share, without the CLI.

The in-memory engine, the replayed market and the stubbed Auto Scaling of the CLI
tests stand in for Pulumi and AWS; the services are handed in as the service would.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from mapt.core import get_logger
from mapt.hosts import (
    AwsHostTarget,
    HostNotFoundError,
    HostRecord,
    HostServices,
    create_request,
    destroy_request,
    reporting_progress,
)
from mapt.stacks import StackRef
from tests.cli.host_harness import FAMILIES, Harness, spot_calls
from tests.harness.pulumi_mocks import FAKE_PRIVATE_KEY_PEM
from tests.harness.spot_market import SpotMarket


def target(cli: Harness, progress: Any = None) -> AwsHostTarget:
    services = HostServices(
        engine=cli._engine,
        readiness=cli._readiness,
        launch=cli.auto_scaling.launch,
        setup=cli._setup,
    )
    return AwsHostTarget(services, progress=progress)


def request(cli: Harness, **extra: Any) -> Any:
    fields = {
        "name": "demo",
        "os": "fedora",
        "backed_url": cli.backend,
        "spot": True,
        "cpus": 2,
        "memory": 8,
        "compute_families": FAMILIES,
        **extra,
    }
    return create_request(fields)


def test_create_answers_a_typed_record_that_keeps_its_secrets(
    cli: Harness, market: SpotMarket
) -> None:
    record = target(cli).create(request(cli, timeout="1h", conn_details_output=str(cli.conn)))

    host = cli.engine.outputs(StackRef("demo", "host", cli.backend))
    assert isinstance(record, HostRecord) and record.project == "demo"
    assert record.address == host["host"] and record.username == "fedora"
    assert record.region == host["region"] and record.spot and record.spot_price
    assert record.instance_types == tuple(host["instance_types"])
    assert record.expires_at is not None
    assert record.connection.private_key == FAKE_PRIVATE_KEY_PEM
    assert record.key_path == cli.conn / "id_rsa"
    assert record.key_path.read_text() == FAKE_PRIVATE_KEY_PEM
    assert "PRIVATE KEY" not in repr(record) + repr(record.connection)
    assert "PRIVATE KEY" not in str(record.to_dict())
    assert record.to_dict()["outputs"]["host"] == host["host"]


def test_update_resizes_on_a_new_choice_and_keeps_it(cli: Harness, market: SpotMarket) -> None:
    hosts = target(cli)
    small = hosts.create(request(cli))
    scans = spot_calls(market)

    bigger = hosts.update(request(cli, cpus=8, memory=32))

    assert spot_calls(market) > scans  # the market was ranked again for the new shape
    assert set(bigger.instance_types).isdisjoint(small.instance_types)
    kept = cli.engine.outputs(StackRef("demo", "spotOption", cli.backend))
    host = cli.engine.outputs(StackRef("demo", "host", cli.backend))
    assert tuple(kept["instance_types"]) == bigger.instance_types
    assert tuple(host["instance_types"]) == bigger.instance_types
    # A create after the resize keeps the new choice.
    assert hosts.create(request(cli, cpus=8, memory=32)).allocation == bigger.allocation


def test_update_of_a_project_without_a_host_creates_nothing(
    cli: Harness, market: SpotMarket
) -> None:
    with pytest.raises(HostNotFoundError, match="project 'demo' has no host in file://"):
        target(cli).update(request(cli))
    assert cli.engine.stack_names() == [] and spot_calls(market) == 0


def test_status_then_destroy_then_status(cli: Harness, market: SpotMarket) -> None:
    hosts = target(cli)
    record = hosts.create(request(cli))

    status = hosts.status("demo", cli.backend)
    assert status.host == record.address and status.spot is True
    assert status.instance_types == record.instance_types
    assert [s.project for s in hosts.list(cli.backend)] == ["demo"]

    destroyed = hosts.destroy(destroy_request({"name": "demo", "backed_url": cli.backend}))
    assert destroyed.project == "demo"
    assert sorted(destroyed.destroyed) == ["host-demo", "spotOption-demo"]
    with pytest.raises(HostNotFoundError):
        hosts.status("demo", cli.backend)
    assert hosts.destroy(destroy_request({"name": "demo", "backed_url": cli.backend})).to_dict()[
        "nothing_to_destroy"
    ]


def test_status_of_unreadable_state_is_an_error_not_absence(tmp_path: Path) -> None:
    from mapt.core import OperationError
    from mapt.stacks import PulumiEngine

    # A checkpoint of the old layout names its project only inside: truncated, it is
    # unknown whether it is this project's. The Pulumi engine reads state without its CLI.
    legacy = tmp_path / "state" / ".pulumi" / "stacks" / "host-other.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text('{"version": 3, "checkpoint": {')
    hosts = AwsHostTarget(HostServices(engine=lambda *_: PulumiEngine()))
    with pytest.raises(OperationError, match="whether project 'nobody' has a host is unknown"):
        hosts.status("nobody", f"file://{tmp_path / 'state'}")


def test_progress_lines_of_a_create_reach_its_callback(cli: Harness, market: SpotMarket) -> None:
    lines: list[tuple[str, str]] = []
    target(cli, progress=lambda level, text: lines.append((level, text))).create(request(cli))
    texts = [text for _, text in lines]
    assert any(t.startswith("chose ") and "kept in stack spotOption-demo" in t for t in texts)
    assert "host stack host-demo: up (create)" in texts
    assert any("is in service in group mapt-host-demo" in text for text in texts)


def test_progress_of_calls_running_at_once_stays_apart() -> None:
    log = get_logger("mapt.tests.progress")
    received: dict[str, list[str]] = {"a": [], "b": []}
    both_inside = threading.Barrier(2)

    def run(name: str) -> None:
        with reporting_progress(lambda level, text: received[name].append(text)):
            both_inside.wait(10)
            log.info("line of %s", name)
            both_inside.wait(10)

    threads = [threading.Thread(target=run, args=(name,)) for name in received]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.info("line of nobody")
    assert received == {"a": ["line of a"], "b": ["line of b"]}


def test_progress_lines_are_redacted() -> None:
    from mapt.core import register_secret

    register_secret("hunter2-secret-value")
    lines: list[str] = []
    with reporting_progress(lambda level, text: lines.append(f"{level}: {text}")):
        get_logger("mapt.tests.progress").warning("token is %s", "hunter2-secret-value")
    assert lines == ["WARNING: token is ***"]
    assert logging.getLogger("mapt").getEffectiveLevel() <= logging.INFO


def test_the_pulumi_engines_own_lines_reach_the_callback_whole_and_redacted() -> None:
    from mapt.core import register_secret
    from mapt.hosts import ProgressStream

    register_secret("s3cr3t-in-a-resource")
    lines: list[tuple[str, str]] = []
    stream = ProgressStream(lambda level, text: lines.append((level, text)))
    stream.write("mapt: host-demo: creating aws:ec2/vpc:Vpc ")
    stream.write("vpc\nmapt: host-demo: created s3cr3t-in-a-resource\nmapt: done")
    assert [text for _, text in lines] == [
        "mapt: host-demo: creating aws:ec2/vpc:Vpc vpc",
        "mapt: host-demo: created ***",
    ]
    stream.flush()
    assert lines[-1] == ("INFO", "mapt: done") and not stream.isatty()


def _without_pulumi_cli(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No ``pulumi`` on PATH, and an empty home for everything that looks for one."""
    monkeypatch.setenv("PATH", str(home))
    monkeypatch.setenv("PULUMI_HOME", str(home / "pulumi-home"))
    monkeypatch.setenv("HOME", str(home))


def test_services_reporting_progress_still_check_the_pulumi_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mapt.core import PrerequisiteError

    _without_pulumi_cli(monkeypatch, tmp_path)
    services = HostServices().reporting_to(lambda level, text: None)
    with pytest.raises(PrerequisiteError, match="the Pulumi CLI was not found"):
        services.check_engine()
    # An engine handed in is left as it is, and brings its own prerequisites.
    handed = HostServices(engine=lambda *_: None)  # type: ignore[arg-type,return-value]
    assert handed.reporting_to(lambda level, text: None) is handed
    handed.check_engine()


def test_create_reports_a_missing_pulumi_cli_before_a_missing_aws_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The documented order: what a run that changes state needs, then the AWS
    # credentials. The session (which a missing profile fails) is made meanwhile.
    from mapt.core import PrerequisiteError

    _without_pulumi_cli(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    asked = create_request(
        {"name": "demo", "os": "fedora", "backed_url": (tmp_path / "state").as_uri(), "cpus": 2}
    )
    with pytest.raises(PrerequisiteError, match="the Pulumi CLI was not found") as raised:
        AwsHostTarget(HostServices()).create(asked)
    assert raised.value.exit_code == 5


def test_move_leaves_the_kept_offer_recorded_failed_for_the_next_one_elsewhere_or_on_demand(
    cli: Harness, market: SpotMarket
) -> None:
    from mapt.hosts import ReplacementPlan

    hosts = target(cli)
    first = hosts.create(request(cli))
    spot_stack = StackRef("demo", "spotOption", cli.backend)

    moved = hosts.move(request(cli), ReplacementPlan(move_reason="InsufficientInstanceCapacity"))
    assert moved.allocation.offer == first.allocation.candidates[0]
    [left] = moved.allocation.failed
    assert (left.offer, left.reason) == (first.allocation.offer, "InsufficientInstanceCapacity")
    kept = cli.engine.outputs(spot_stack)
    assert kept["az"] == moved.allocation.availability_zone
    assert [f["reason"] for f in kept["failed"]] == ["InsufficientInstanceCapacity"]
    assert cli.engine.outputs(StackRef("demo", "host", cli.backend))["availability_zone"] == (
        moved.allocation.availability_zone
    )

    # Straight to on demand, in the first failed offer's region; the spot offers kept failed.
    on_demand = hosts.move(
        request(cli, spot_fallback_on_demand=True),
        ReplacementPlan(move_reason="BreakerOpen", on_demand=True),
    )
    assert not on_demand.allocation.is_spot
    assert on_demand.allocation.region == first.allocation.region
    assert [f.reason for f in on_demand.allocation.failed] == [
        "InsufficientInstanceCapacity",
        "BreakerOpen",
    ]
    assert cli.engine.outputs(spot_stack)["spot_price"] is None


def test_move_with_an_open_breaker_passes_over_every_candidate_of_the_region(
    cli: Harness, market: SpotMarket
) -> None:
    from mapt.hosts import ReplacementPlan, SpotAttemptsExhaustedError

    hosts = target(cli)
    first = hosts.create(request(cli))
    region = first.allocation.region
    outside = [c for c in first.allocation.candidates if c.region != region]
    assert outside, "the replayed market ranks candidates in other regions"

    elsewhere = hosts.move(
        request(cli), ReplacementPlan(move_reason="BreakerOpen", avoid_regions=(region,))
    )
    assert elsewhere.allocation.offer == outside[0]
    assert [(f.offer, f.reason) for f in elsewhere.allocation.failed] == [
        (first.allocation.offer, "BreakerOpen")
    ]
    # No spot candidate left outside the open region, and no fallback: it fails, saying so.
    now_in = elsewhere.allocation.region
    assert {c.region for c in elsewhere.allocation.candidates} <= {now_in}
    with pytest.raises(SpotAttemptsExhaustedError, match="BreakerOpen"):
        hosts.move(
            request(cli), ReplacementPlan(move_reason="BreakerOpen", avoid_regions=(now_in,))
        )


def test_create_loads_the_ec2_model_while_its_prerequisites_are_checked(
    cli: Harness, market: SpotMarket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Its own botocore loader (not the suite's shared one), so the model is read again.
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    from tests.harness.boto import record_model_reads

    reads = record_model_reads(monkeypatch.setattr)

    def ec2_readers() -> list[str]:
        return [thread for thread, path in reads if "/ec2/" in path]

    seen_during_check: list[str] = []

    class WaitingCheck(HostServices):
        def check_engine(self) -> None:
            # Stands for the Pulumi CLI's version check, a wait the parse runs behind.
            deadline = threading.Event()
            for _ in range(300):
                if ec2_readers():
                    break
                deadline.wait(0.1)
            seen_during_check.extend(ec2_readers())

    services = WaitingCheck(
        engine=cli._engine,
        readiness=cli._readiness,
        launch=cli.auto_scaling.launch,
        setup=cli._setup,
    )
    asked = request(cli)  # its region check reads the model too, in its own session
    reads.clear()
    AwsHostTarget(services).create(asked)
    # Read while the check waited, by another thread (``models_loading``); that the
    # session's later clients do not read it again: tests/allocation/test_models_loading.
    assert seen_during_check and threading.current_thread().name not in seen_during_check
