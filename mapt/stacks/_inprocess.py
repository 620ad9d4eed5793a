"""Engines that run programs in-process under Pulumi's mocks: dry runs and test flows.

Both run the same inline program the Pulumi engine would, through ``run_program``
and ``RecordingMocks``: no Pulumi CLI, no provider plugin, no credentials.

- ``DryRunEngine`` backs ``--dry-run``: it shows what an ``up`` would register and
  export and writes no state. It reads real state through a ``reader`` engine's
  ``list_stacks`` (the checkpoint files, for the Pulumi engine: no CLI, no passphrase,
  no lock, no workspace), so a dry run sees which stacks already exist (e.g. a saved
  spot choice).
- ``InMemoryEngine`` keeps each stack's outputs in memory, so ``exists``,
  ``outputs`` and ``destroy`` behave like a real backend within one process: whole
  create/destroy flows can be tested, by mapt and by library users.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mapt.core import MaptError, OperationError, StateLockedError, get_logger
from mapt.stacks._dryrun import (
    ComputedAttributes,
    InvokeAnswer,
    ProgramRun,
    RecordingMocks,
    RegisteredResource,
    run_program,
)
from mapt.stacks._engine import Engine, PlannedStep, Program, StackPreview, StackRef, check_config
from mapt.stacks._errors import StackNotFoundError, locked_message
from mapt.stacks._inventory import StackSummary

_log = get_logger(__name__)


@dataclass(frozen=True)
class RecordedRun:
    """One program run by an in-process engine: for which stack, why, and what it did."""

    ref: StackRef
    operation: str  # "up" or "preview"
    run: ProgramRun
    # What the ``up`` was asked to replace (``Engine.up``'s ``replace``): these engines
    # keep no resource between runs (the mocks compute each one anew), so it is recorded.
    replace: tuple[str, ...] = ()


class _InProcessEngine:
    """Running programs under fresh mocks and recording the runs (shared by both engines)."""

    def __init__(
        self,
        answers: Mapping[str, InvokeAnswer] | None = None,
        computed: ComputedAttributes | None = None,
    ) -> None:
        self._answers = dict(answers or {})
        self._computed = computed
        self.runs: list[RecordedRun] = []

    @property
    def last_run(self) -> ProgramRun:
        """The most recent program run (``LookupError`` when nothing ran yet)."""
        if not self.runs:
            raise LookupError("no program has run on this engine")
        return self.runs[-1].run

    def answer(self, token: str, fn: InvokeAnswer) -> None:
        """Answer invokes of ``token`` with ``fn(args)`` in every later run."""
        self._answers[token] = fn

    def _run(
        self,
        ref: StackRef,
        program: Program,
        config: Mapping[str, str] | None,
        *,
        operation: str,
        preview: bool,
        mocks: RecordingMocks | None = None,
        replace: Sequence[str] = (),
    ) -> ProgramRun:
        """Run ``program`` as the Pulumi engine would for ``ref``, failing the same way.

        A ``MaptError`` raised by the program propagates as itself; any other
        exception becomes an ``OperationError``, as a failed inline program does on
        the Pulumi engine. ``mocks`` (default: fresh ones) record what the program
        registered, also when it fails.
        """
        settings = check_config(config)
        mocks = mocks if mocks is not None else self._mocks()
        try:
            run = run_program(
                program,
                project=ref.project,
                stack=ref.stack_name,
                mocks=mocks,
                preview=preview,
                config=settings,
            )
        except MaptError:
            raise
        except Exception as error:
            raise OperationError(
                f"the program of stack {ref.stack_name} failed: {type(error).__name__}: {error}"
            ) from error
        self.runs.append(RecordedRun(ref, operation, run, tuple(replace)))
        return run

    def _mocks(self) -> RecordingMocks:
        return RecordingMocks(self._answers, self._computed)


def _steps(op: str, resources: list[RegisteredResource]) -> tuple[PlannedStep, ...]:
    return tuple(PlannedStep(op, r.type, r.name) for r in resources)


def _changes(steps: tuple[PlannedStep, ...]) -> dict[str, int]:
    changes: dict[str, int] = {}
    for step in steps:
        changes[step.op] = changes.get(step.op, 0) + 1
    return changes


class DryRunEngine(_InProcessEngine):
    """Shows what an ``up`` would do, writing no state and needing no credentials.

    ``reader`` is the engine of the real backend; only its ``list_stacks`` is used,
    which reads state without the Pulumi CLI, a passphrase or a lock on every engine
    (without a reader the state is taken to be empty). So ``exists`` and ``outputs``
    see the stacks as ``mapt aws host list`` does: plain outputs only, secret outputs
    left out. Unreadable state fails as it does there; it is never taken as absent.
    The backend is read once per dry run: it changes nothing there, so one snapshot
    answers every ``exists``, ``outputs`` and ``list_stacks`` (a dry create asks
    several times; each read of an S3 backend lists it and reads every checkpoint).
    ``answers`` and ``computed`` are passed to ``RecordingMocks`` for provider invokes.
    Every program run is kept in ``runs``; ``destroyed`` lists the stacks a destroy
    would remove. Values a provider computes at deployment (IDs, IPs) come from the
    mocks: the placeholders ``<name>-id`` and whatever ``computed`` adds, never real
    values.
    """

    def __init__(
        self,
        reader: Engine | None = None,
        answers: Mapping[str, InvokeAnswer] | None = None,
        computed: ComputedAttributes | None = None,
    ) -> None:
        super().__init__(answers, computed)
        self._reader = reader
        self._snapshots: dict[str | None, list[StackSummary]] = {}
        self.destroyed: list[StackRef] = []

    def _summary(self, ref: StackRef) -> StackSummary | None:
        """The stack as the reader's backend lists it, or None when it has no state.

        An unreadable entry that may be this stack (same project and name, or one whose
        project or name could not be told) is an error: its state is unknown, not absent.
        """
        found = None
        for summary in self.list_stacks(ref.backend_url):
            if summary.unreadable is not None:
                if summary.project in (ref.project, "") and summary.stack_name in (
                    ref.stack_name,
                    "",
                ):
                    raise OperationError(
                        f"cannot read the state of stack {ref.stack_name} at "
                        f"{summary.location}: {summary.unreadable}",
                        hint="Repair or remove that file; a dry run never guesses state.",
                    )
            elif summary.project == ref.project and summary.stack_name == ref.stack_name:
                found = summary
        return found

    def exists(self, ref: StackRef) -> bool:
        return self._summary(ref) is not None

    def outputs(self, ref: StackRef) -> dict[str, Any]:
        summary = self._summary(ref)
        if summary is None:
            raise StackNotFoundError(f"stack {ref.stack_name} does not exist in its backend")
        return dict(summary.outputs)

    def up(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
        refresh: bool = False,
        replace: Sequence[str] = (),
    ) -> dict[str, Any]:
        run = self._run(ref, program, config, operation="up", preview=True, replace=replace)
        _log.info(
            "dry run: stack %s would register %d resources and keep %d outputs",
            ref.stack_name,
            len(run.resources),
            len(run.outputs),
        )
        return run.plain_outputs()

    def preview(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
    ) -> StackPreview:
        run = self._run(ref, program, config, operation="preview", preview=True)
        # Without the deployed resources there is nothing to diff against.
        op = "declare" if self.exists(ref) else "create"
        steps = _steps(op, run.resources)
        return StackPreview(stack_name=ref.stack_name, changes=_changes(steps), steps=steps)

    def destroy(self, ref: StackRef) -> bool:
        existed = self.exists(ref)
        if existed:
            self.destroyed.append(ref)
            _log.info("dry run: stack %s would be destroyed and removed", ref.stack_name)
        return existed

    def force_unlock(self, ref: StackRef) -> list[str]:
        """The lock entries a real force-unlock would remove; none is removed.

        Lock entries are read from the backend (or memory) directly: a lock can outlive
        a readable checkpoint, and reading them needs no CLI either.
        """
        from mapt.stacks._pulumi import PulumiEngine
        from mapt.stacks._sandbox import SandboxEngine

        if isinstance(self._reader, (PulumiEngine, SandboxEngine)):
            return self._reader.list_locks(ref)
        if isinstance(self._reader, InMemoryEngine):
            return self._reader.locks(ref)
        return []

    def list_stacks(self, backend_url: str | None) -> list[StackSummary]:
        """The reader's stacks in the backend, as first read by this dry run."""
        if self._reader is None:
            return []
        if backend_url not in self._snapshots:
            self._snapshots[backend_url] = self._reader.list_stacks(backend_url)
        return list(self._snapshots[backend_url])

    def purge_project_state(self, backend_url: str | None, project: str) -> list[str]:
        """Nothing is removed in a dry run."""
        return []


@dataclass
class _StoredStack:
    outputs: dict[str, Any]
    resources: list[RegisteredResource]
    config: dict[str, str]
    secret_outputs: frozenset[str]
    updated_at: datetime


class InMemoryEngine(_InProcessEngine):
    """A backend in memory: ``up`` stores outputs, ``destroy`` forgets them.

    Programs run as if deployed (mock IDs such as ``<name>-id`` are known). Locks can
    be simulated with ``lock(ref)``: until ``force_unlock``, operations on that stack
    raise ``StateLockedError`` as the Pulumi engine does for a stack a dead run left
    locked.
    """

    def __init__(
        self,
        answers: Mapping[str, InvokeAnswer] | None = None,
        computed: ComputedAttributes | None = None,
    ) -> None:
        super().__init__(answers, computed)
        self._stacks: dict[tuple[str, str, str], _StoredStack] = {}
        self._locks: dict[tuple[str, str, str], list[str]] = {}

    @staticmethod
    def _key(ref: StackRef) -> tuple[str, str, str]:
        return (ref.backend_url or "", ref.project, ref.stack_name)

    def stack_names(self) -> list[str]:
        """The stacks that exist, in creation order."""
        return [stack for (_, _, stack) in self._stacks]

    def resources(self, ref: StackRef) -> list[RegisteredResource]:
        """The resources the stack's last ``up`` registered."""
        return list(self._stored(ref).resources)

    def config(self, ref: StackRef) -> dict[str, str]:
        """The config the stack's last ``up`` was given."""
        return dict(self._stored(ref).config)

    def lock(self, ref: StackRef) -> str:
        """Leave a lock on ``ref`` as a killed run would; return its entry."""
        entry = f"memory://{ref.project}/{ref.stack_name}/{uuid.uuid4()}.json"
        self._locks.setdefault(self._key(ref), []).append(entry)
        return entry

    def locks(self, ref: StackRef) -> list[str]:
        """The lock entries on ``ref``."""
        return list(self._locks.get(self._key(ref), []))

    # -- the Engine operations ------------------------------------------------------------
    def exists(self, ref: StackRef) -> bool:
        return self._key(ref) in self._stacks

    def outputs(self, ref: StackRef) -> dict[str, Any]:
        return dict(self._stored(ref).outputs)

    def up(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
        refresh: bool = False,
        replace: Sequence[str] = (),
    ) -> dict[str, Any]:
        self._check_unlocked(ref)
        settings = check_config(config)  # bad config creates nothing
        mocks = self._mocks()
        try:
            run = self._run(
                ref, program, config, operation="up", preview=False, mocks=mocks, replace=replace
            )
        except MaptError:
            # As on the Pulumi engine, which runs ``stack init`` before ``up``: after a
            # failed update the stack exists, with what it had and what was created
            # before the failure, and without outputs (the Pulumi engine keeps those
            # exported before a program raised at once; mapt's programs export last).
            before = self._stacks.get(self._key(ref))
            self._stacks[self._key(ref)] = _StoredStack(
                outputs={},
                resources=_merged(before.resources if before else [], mocks.resources),
                config=settings,
                secret_outputs=frozenset(),
                updated_at=datetime.now(timezone.utc),
            )
            raise
        outputs = run.plain_outputs()
        self._stacks[self._key(ref)] = _StoredStack(
            outputs=dict(outputs),
            resources=list(run.resources),
            config=settings,
            secret_outputs=frozenset(name for name, out in run.outputs.items() if out.secret),
            updated_at=datetime.now(timezone.utc),
        )
        return outputs

    def preview(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
    ) -> StackPreview:
        self._check_unlocked(ref)
        run = self._run(ref, program, config, operation="preview", preview=True)
        stored = self._stacks.get(self._key(ref))
        before = {(r.type, r.name): r for r in (stored.resources if stored else [])}
        steps: list[PlannedStep] = []
        for resource in run.resources:
            old = before.pop((resource.type, resource.name), None)
            if old is None:
                op = "create"
            else:
                # Preview inputs may hold unknowns where the stored ones hold values.
                op = "same" if _same_inputs(old.inputs, resource.inputs) else "update"
            steps.append(PlannedStep(op, resource.type, resource.name))
        steps.extend(PlannedStep("delete", t, n) for (t, n) in before)
        planned = tuple(steps)
        return StackPreview(stack_name=ref.stack_name, changes=_changes(planned), steps=planned)

    def destroy(self, ref: StackRef) -> bool:
        self._check_unlocked(ref)
        return self._stacks.pop(self._key(ref), None) is not None

    def force_unlock(self, ref: StackRef) -> list[str]:
        return self._locks.pop(self._key(ref), [])

    def list_stacks(self, backend_url: str | None) -> list[StackSummary]:
        summaries = [
            StackSummary(
                project=project,
                stack_name=stack_name,
                updated_at=stored.updated_at,
                resource_count=len(stored.resources),
                outputs={k: v for k, v in stored.outputs.items() if k not in stored.secret_outputs},
                locks=tuple(self._locks.get((url, project, stack_name), [])),
            )
            for (url, project, stack_name), stored in self._stacks.items()
            if url == (backend_url or "")
        ]
        return sorted(summaries, key=lambda s: (s.project, s.stack_name))

    def purge_project_state(self, backend_url: str | None, project: str) -> list[str]:
        """Forget the project's lock entries (its stacks are gone once destroyed)."""
        removed: list[str] = []
        for key in [k for k in self._locks if k[0] == (backend_url or "") and k[1] == project]:
            removed += self._locks.pop(key)
        return removed

    def _stored(self, ref: StackRef) -> _StoredStack:
        try:
            return self._stacks[self._key(ref)]
        except KeyError:
            raise StackNotFoundError(f"stack {ref.stack_name} does not exist in memory") from None

    def _check_unlocked(self, ref: StackRef) -> None:
        if self._locks.get(self._key(ref)):
            raise StateLockedError(locked_message(ref.stack_name))


def _merged(
    kept: list[RegisteredResource], created: list[RegisteredResource]
) -> list[RegisteredResource]:
    """``kept`` with ``created`` in place of the resources of the same type and name."""
    fresh = {(r.type, r.name): r for r in created}
    merged = [fresh.pop((r.type, r.name), r) for r in kept]
    return merged + list(fresh.values())


def _same_inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Inputs equal, ignoring values the preview cannot know yet (None)."""
    keys = set(old) | set(new)
    return all(new.get(k) is None or old.get(k) == new.get(k) for k in keys)
