"""deploy_host: phases in order, readiness after each, every phase's error propagated."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from mapt.core import InputError, Interrupted, MaptError, OperationError, StateLockedError
from mapt.targets import SshAccess
from mapt.targets.aws import HostRequest, HostSetup, SpotLaunchError, deploy_host, host_access
from tests.harness.pulumi_mocks import FAKE_EIP, FAKE_PRIVATE_KEY_PEM, PulumiHarness
from tests.targets.test_aws_host_program import CTX, ON_DEMAND, SPOT

NAT = "aws:ec2/natGateway:NatGateway"


class Engine:
    """Runs programs under the mocks as `up` would, and can fail a given run."""

    def __init__(self, fail_on: int | None = None, error: Exception | None = None) -> None:
        self.runs: list[list[str]] = []
        self.fail_on = fail_on
        self.error = error

    def up(self, program: Callable[[], None]) -> Mapping[str, Any]:
        run = PulumiHarness().run(program)
        self.runs.append([r.type for r in run.resources])
        if self.fail_on == len(self.runs):
            assert self.error is not None
            raise self.error
        return run.plain_outputs()


def test_airgap_runs_bootstrap_then_cut_off_waiting_after_each() -> None:
    engine, waits = Engine(), list[SshAccess]()
    events: list[str] = []

    def wait(access: SshAccess) -> None:
        waits.append(access)
        events.append(f"wait after up {len(engine.runs)}")

    outputs = deploy_host(CTX, SPOT, HostRequest("rhel", airgap=True), up=engine.up, wait=wait)
    assert [NAT in run for run in engine.runs] == [True, False]
    assert events == ["wait after up 1", "wait after up 2"]
    access = waits[-1]
    assert access.bastion is not None and access.bastion.host == FAKE_EIP
    assert access.target.host == "10.0.101.10"
    assert access.wait_for_cloud_init
    assert outputs["bastion_username"] == "ec2-user"


def test_standard_host_is_one_up_and_one_wait() -> None:
    engine, waits = Engine(), list[SshAccess]()
    deploy_host(CTX, ON_DEMAND, HostRequest("fedora"), up=engine.up, wait=waits.append)
    assert len(engine.runs) == 1 and NAT not in engine.runs[0]
    assert len(waits) == 1
    assert waits[0].bastion is None and waits[0].wait_for_cloud_init
    assert waits[0].target.private_key == FAKE_PRIVATE_KEY_PEM


def test_a_host_awaiting_secrets_gets_them_once_ready_and_the_stack_records_it() -> None:
    engine, events = Engine(), list[str]()

    def wait(access: SshAccess) -> None:
        assert not access.wait_for_cloud_init  # Windows
        events.append(f"wait after up {len(engine.runs)}")

    def setup(access: SshAccess, outputs: Mapping[str, Any]) -> HostSetup:
        events.append(f"setup after up {len(engine.runs)}")
        assert access.target.private_key == FAKE_PRIVATE_KEY_PEM
        assert outputs["awaited_secrets"] == ["windows-password"]
        return HostSetup("i-0abcdef1234567890", password="From-EC2-Passw0rd")

    outputs = deploy_host(
        CTX, ON_DEMAND, HostRequest("windows"), up=engine.up, wait=wait, setup=setup
    )
    # One more up records what was delivered; it changes outputs only.
    assert events == ["wait after up 1", "setup after up 1"]
    assert len(engine.runs) == 2 and sorted(engine.runs[0]) == sorted(engine.runs[1])
    assert outputs["configured_instance"] == "i-0abcdef1234567890"
    assert outputs["userpassword"] == "From-EC2-Passw0rd"


def test_an_airgapped_host_gets_its_secrets_while_it_still_has_a_way_out() -> None:
    engine, events = Engine(), list[str]()
    request = HostRequest("rhel", airgap=True, rh_subscription_username="u",
                          rh_subscription_password="Pw-42")  # fmt: skip

    def setup(access: SshAccess, outputs: Mapping[str, Any]) -> HostSetup:
        events.append(f"setup after up {len(engine.runs)}")
        assert access.bastion is not None  # through the bastion, NAT still there
        return HostSetup("i-0abcdef1234567890")

    def wait(access: SshAccess) -> None:
        events.append(f"wait after up {len(engine.runs)}")

    outputs = deploy_host(CTX, SPOT, request, up=engine.up, wait=wait, setup=setup)
    assert events == ["wait after up 1", "setup after up 1", "wait after up 2"]
    assert [NAT in run for run in engine.runs] == [True, False]  # no extra up needed
    assert outputs["configured_instance"] == "i-0abcdef1234567890"


def test_a_failed_delivery_stops_before_recording_anything() -> None:
    engine = Engine()

    def setup(access: SshAccess, outputs: Mapping[str, Any]) -> HostSetup:
        raise OperationError("registering with Red Hat on host x failed (exit 70): ***")

    request = HostRequest("rhel", rh_subscription_username="u", rh_subscription_password="Pw-42")
    with pytest.raises(OperationError, match="registering with Red Hat"):
        deploy_host(CTX, ON_DEMAND, request, up=engine.up, wait=lambda _a: None, setup=setup)
    assert len(engine.runs) == 1


@pytest.mark.parametrize("failing_phase", [1, 2])
def test_an_error_in_either_airgap_phase_propagates_naming_the_phase(failing_phase: int) -> None:
    engine = Engine(fail_on=failing_phase, error=StateLockedError("stack host-ci-42 is locked"))
    waits: list[SshAccess] = []
    with pytest.raises(StateLockedError) as caught:
        deploy_host(CTX, SPOT, HostRequest("fedora", airgap=True), up=engine.up, wait=waits.append)
    phase = ["bootstrap", "airgap"][failing_phase - 1]
    assert str(caught.value).startswith(f"air-gapped host, phase '{phase}': stack host-ci-42")
    assert len(engine.runs) == failing_phase  # nothing ran after the failure
    assert len(waits) == failing_phase - 1


@pytest.mark.parametrize(
    "error",
    [
        SpotLaunchError(
            reason_code="InsufficientInstanceCapacity", status_message="no capacity",
            group_name="mapt-host-ci-42", region="us-east-1",
        ),
        Interrupted(signal.SIGINT),
        Interrupted.for_signal(signal.SIGTERM),
    ],
    ids=["spot-launch", "sigint", "sigterm"],
)  # fmt: skip
def test_an_airgap_phase_keeps_an_error_that_takes_no_message(error: MaptError) -> None:
    # These classes build their message from their own fields: the phase is added to
    # the error itself, so a refused spot launch still fails over (exit 4) and a
    # signal still ends the run with 130 or 143.
    exit_code, message = error.exit_code, error.message

    def wait(access: SshAccess) -> None:
        raise error

    with pytest.raises(MaptError) as caught:
        deploy_host(CTX, SPOT, HostRequest("rhel", airgap=True), up=Engine().up, wait=wait)
    assert caught.value is error and caught.value.exit_code == exit_code
    assert str(caught.value).startswith(f"air-gapped host, phase 'bootstrap': {message}")
    if isinstance(error, SpotLaunchError):
        assert error.capacity_failure and error.reason_code == "InsufficientInstanceCapacity"


def test_readiness_failure_in_the_bootstrap_phase_stops_before_cut_off() -> None:
    engine = Engine()

    def wait(access: SshAccess) -> None:
        raise OperationError("host 10.0.101.10 was not ready after 5 s: refused the key")

    with pytest.raises(OperationError, match=r"phase 'bootstrap': host 10\.0\.101\.10"):
        deploy_host(CTX, SPOT, HostRequest("rhel", airgap=True), up=engine.up, wait=wait)
    assert len(engine.runs) == 1


def test_standard_host_errors_propagate_unchanged() -> None:
    error = OperationError("up failed: SpotMaxPriceTooLow")
    engine = Engine(fail_on=1, error=error)
    with pytest.raises(OperationError) as caught:
        deploy_host(CTX, SPOT, HostRequest("rhel"), up=engine.up, wait=lambda _a: None)
    assert caught.value is error


def test_host_access_needs_the_outputs() -> None:
    with pytest.raises(OperationError, match="no 'id_rsa' output"):
        host_access({"host": "h", "username": "u"}, HostRequest("rhel"))
    with pytest.raises(InputError):
        HostRequest("rhel", disk_size=0)


@pytest.mark.parametrize("os_name", ["fedora", "windows"])
def test_a_rerun_without_a_runner_keeps_the_runner_destroy_must_remove(os_name: str) -> None:
    # Fedora awaits no secret this time, so nothing is delivered; Windows gets its
    # password again, a delivery with no runner in it. Either way GitHub still has the
    # runner the first create registered, and destroy finds it only in the stack.
    from mapt.targets.aws import recorded_setup

    earlier = recorded_setup(
        {"configured_instance": "i-0aaaaaaaaaaaaaaaa", "runner_id": 7,
         "runner_scope": "/repos/acme/app"}
    )  # fmt: skip

    def setup(access: SshAccess, outputs: Mapping[str, Any]) -> HostSetup:
        return HostSetup("i-0aaaaaaaaaaaaaaaa", password="From-EC2-Passw0rd")

    outputs = deploy_host(
        CTX, ON_DEMAND, HostRequest(os_name), up=Engine().up, wait=lambda _a: None,
        setup=setup, recorded=earlier,
    )  # fmt: skip
    assert (outputs["runner_id"], outputs["runner_scope"]) == (7, "/repos/acme/app")
    assert outputs["configured_instance"] == "i-0aaaaaaaaaaaaaaaa"


def test_a_rerun_keeps_the_earlier_record_until_it_has_delivered_again() -> None:
    from mapt.integrations.github import RunnerScope, RunnerSpec
    from mapt.targets.aws import recorded_setup

    runner = RunnerSpec(RunnerScope.for_repo("acme/app"), "AREGTOKEN42", "mapt-ci-42")
    request = HostRequest("fedora", runner=runner)
    earlier = HostSetup("i-0aaaaaaaaaaaaaaaa", runner_id=7)
    engine = Engine()

    def setup(access: SshAccess, outputs: Mapping[str, Any]) -> HostSetup:
        # What the stack holds while the new delivery runs: the earlier record.
        assert recorded_setup(outputs) == earlier
        raise OperationError("registering GitHub runner mapt-ci-42 on host x failed (exit 1)")

    with pytest.raises(OperationError):
        deploy_host(
            CTX, ON_DEMAND, request, up=engine.up, wait=lambda _a: None, setup=setup,
            recorded=earlier,
        )  # fmt: skip
    assert len(engine.runs) == 1  # the stack was left with the earlier record
    assert recorded_setup({}) is None
