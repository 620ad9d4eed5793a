"""Failing programs on the real engine: the exit code survives, and what a failed up leaves."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from mapt.core import InputError, MaptError, NoCapacityError, OperationError
from mapt.stacks import InMemoryEngine, PulumiEngine, StackRef
from tests.stacks.real_engine.conftest import RealCli, leftovers


def engine() -> PulumiEngine:
    return PulumiEngine(progress_stream=io.StringIO(), live=False)


@pytest.fixture
def ref(tmp_path: Path) -> StackRef:
    return StackRef("demo", "host", f"file://{tmp_path / 'state'}")


def raising(error: BaseException) -> Callable[[object], object]:
    def callback(_: object) -> object:
        raise error

    return callback


def fails_at_once(error: BaseException) -> Callable[[], None]:
    def program() -> None:
        pulumi.export("started", True)
        raise error

    return program


def fails_in_apply(error: BaseException) -> Callable[[], None]:
    """As the Windows user data check does: the value is only known inside ``apply``."""

    def program() -> None:
        pulumi.export("started", True)
        pulumi.export("user_data", pulumi.Output.from_input("m6i.large").apply(raising(error)))

    return program


@pytest.mark.parametrize("where", [fails_at_once, fails_in_apply], ids=["at-once", "in-apply"])
@pytest.mark.parametrize(
    "error",
    [
        InputError("the Windows user data for 'admin' is too long"),
        NoCapacityError("no spot capacity for m6i.large in eu-north-1"),
    ],
    ids=["input", "no-capacity"],
)
def test_a_mapt_error_in_the_program_keeps_its_class_and_exit_code(
    real_cli: RealCli,
    ref: StackRef,
    where: Callable[[BaseException], Callable[[], None]],
    error: MaptError,
) -> None:
    with pytest.raises(type(error)) as caught:
        engine().up(ref, where(error))
    assert caught.value is error and caught.value.exit_code == error.exit_code
    assert leftovers(real_cli) == []


@pytest.mark.parametrize("where", [fails_at_once, fails_in_apply], ids=["at-once", "in-apply"])
def test_any_other_exception_is_an_operation_error_naming_it(
    real_cli: RealCli, ref: StackRef, where: Callable[[BaseException], Callable[[], None]]
) -> None:
    with pytest.raises(OperationError) as caught:
        engine().up(ref, where(ValueError("subnet cidr 10.0.300.0/24 is invalid")))
    assert type(caught.value) is OperationError and caught.value.exit_code == 1
    assert str(caught.value) == (
        "the program of stack host-demo failed: subnet cidr 10.0.300.0/24 is invalid"
    )


def fails_before_exporting(error: BaseException) -> Callable[[], None]:
    """As mapt's programs fail at once: before their exports, which come last."""

    def program() -> None:
        raise error

    return program


@pytest.mark.parametrize(
    "where", [fails_before_exporting, fails_in_apply], ids=["at-once", "in-apply"]
)
def test_after_a_failed_first_up_the_stack_exists_without_outputs_until_destroyed(
    real_cli: RealCli, ref: StackRef, where: Callable[[BaseException], Callable[[], None]]
) -> None:
    """Pulumi runs ``stack init`` before ``up``: the failed stack stays, and destroy removes it.

    InMemoryEngine behaves the same, so flows tested on it (failover's refresh, destroy's
    "nothing to destroy", host list) see what a real backend shows.
    """
    failing = where(NoCapacityError("no spot capacity"))
    for each in (engine(), InMemoryEngine()):
        with pytest.raises(NoCapacityError):
            each.up(ref, failing)
        assert each.exists(ref) is True
        assert each.outputs(ref) == {}
        assert each.destroy(ref) is True
        assert each.exists(ref) is False
        assert each.destroy(ref) is False
    assert leftovers(real_cli) == []


def test_a_failed_up_of_an_existing_stack_leaves_it_for_the_next_up(
    real_cli: RealCli, ref: StackRef
) -> None:
    """Its outputs are then the last ones or none, by timing: the stack resource's new
    state, without outputs, is recorded only if its registration finished before the
    program failed. InMemoryEngine takes the case a caller must handle: none.
    """

    def first() -> None:
        pulumi.export("az", "eu-north-1a")

    for each in (engine(), InMemoryEngine()):
        each.up(ref, first)
        with pytest.raises(NoCapacityError):
            each.up(ref, fails_in_apply(NoCapacityError("no spot capacity")))
        assert each.exists(ref) is True
        assert each.outputs(ref) in ({}, {"az": "eu-north-1a"})
        assert each.up(ref, first) == {"az": "eu-north-1a"}


def test_outputs_exported_before_a_failure_at_once_are_kept(
    real_cli: RealCli, ref: StackRef
) -> None:
    """The real engine keeps what was exported before the program raised.

    (InMemoryEngine does not: under mocks a failed program's exports are not resolved.)
    """
    with pytest.raises(NoCapacityError):
        engine().up(ref, fails_at_once(NoCapacityError("no spot capacity")))
    assert engine().outputs(ref) == {"started": True}
