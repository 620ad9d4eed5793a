"""Destroy a host: its stack, its spot choice, its GitHub runner, the project's state.

Nothing here prints: ``destroy_host`` returns a ``DestroyRecord``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mapt.core import (
    Interrupted,
    OperationError,
    RunContext,
    get_logger,
    validate_host_project_name,
)
from mapt.hosts._records import DestroyRecord

if TYPE_CHECKING:
    from mapt.integrations.github import RegisteredRunner
    from mapt.stacks import Engine, StackRef

log = get_logger(__name__)


def destroy_host(
    context: RunContext,
    *,
    engine: Engine,
    force: bool,
    keep_state: bool,
    lock_timeout: float,
    deregister: Callable[[RegisteredRunner | None], str | None] | None = None,
    prerequisites: Callable[[], None] | None = None,
    secrets_provider: str | None = None,
) -> DestroyRecord:
    """Destroy the host stack, then ``spotOption-<project>``, then the project's state.

    A stack that does not exist is skipped, so destroying twice, or a project that
    never existed, succeeds. Whether the project has any stack is read from the state
    first (``list_stacks``, as ``host list`` reads it): a project without one is
    nothing to destroy, found without ``prerequisites`` (the engine's, e.g. the Pulumi
    CLI) or a lock; only leftovers of an earlier ``keep_state`` destroy are purged, so
    a project that never existed writes nothing. Otherwise ``prerequisites`` run
    before the lock is taken. ``force`` first removes the locks dead runs left: the
    project lock (saying whose it was and since when) and the stacks' Pulumi locks.

    The GitHub runner the host stack recorded (its scope and id) is read before the
    stack goes and handed to ``deregister`` after (GitHub refuses to remove a runner
    that is running a job); a project without that record hands ``None``, so no
    runner is ever removed that this project did not register.

    mapt's own ``EVENTS_PROJECT`` is refused (``InputError``) before anything is read:
    purging it would remove the event intake's state. ``secrets_provider`` is the one
    ``engine`` was made with, named again in the command an interrupted destroy prints.
    """
    from mapt.allocation import SPOT_STACK_NAME
    from mapt.stacks import StackRef, break_project_lock, project_lock
    from mapt.targets.aws import HOST_STACK

    project = validate_host_project_name(context.project_name)
    if not force and not any(
        summary.project == project for summary in engine.list_stacks(context.backend_url)
    ):
        log.info("project %s has no stacks; nothing to destroy", context.project_name)
        # What a --keep-state destroy kept can still go: read, then removed if any.
        leftovers = [] if keep_state else engine.purge_project_state(context.backend_url, project)
        # No host stack, so no runner record: ``deregister`` says none is removed.
        note = deregister(None) if deregister is not None else None
        return DestroyRecord(project, (), purged=tuple(leftovers), runner=note)
    if prerequisites is not None:
        prerequisites()
    broken = None
    registered: RegisteredRunner | None = None
    if force:
        broken = break_project_lock(context.backend_url, context.project_name)
        if broken is not None:
            log.warning("removed the project lock held by %s", broken.describe())
    destroyed: list[str] = []
    unlocked: list[str] = []
    with (
        project_lock(
            context.backend_url, context.project_name, operation="destroy", timeout=lock_timeout
        ),
        _destroy_hint_on_interrupt(context, secrets_provider),
    ):
        for name in (HOST_STACK, SPOT_STACK_NAME):
            ref = StackRef.for_context(context, name)
            if force:
                removed = engine.force_unlock(ref)
                for entry in removed:
                    log.warning("removed the lock %s of stack %s", entry, ref.stack_name)
                unlocked += removed
            if name == HOST_STACK:
                registered = registered_runner(engine, ref)
            if engine.destroy(ref):
                destroyed.append(ref.stack_name)
        purged: list[str] = []
        if not keep_state:
            purged = engine.purge_project_state(context.backend_url, context.project_name)
    note = deregister(registered) if deregister is not None else None
    return DestroyRecord(project, tuple(destroyed), tuple(unlocked), tuple(purged), broken, note)


def registered_runner(engine: Engine, ref: StackRef) -> RegisteredRunner | None:
    """The runner the host stack recorded (``runner_id`` in ``runner_scope``), if any.

    A record that cannot be read is an error, never taken for "no runner".
    """
    from mapt.core import InputError
    from mapt.integrations.github import RegisteredRunner, RunnerScope, runner_name
    from mapt.targets.aws import OUTPUT_RUNNER_ID, OUTPUT_RUNNER_SCOPE

    if not engine.exists(ref):
        return None
    outputs = engine.outputs(ref)
    runner_id, scope = outputs.get(OUTPUT_RUNNER_ID), outputs.get(OUTPUT_RUNNER_SCOPE)
    if runner_id is None and scope is None:
        return None
    try:
        if not isinstance(runner_id, int) or isinstance(runner_id, bool):
            raise InputError(f"runner id {runner_id!r} is not a number")
        return RegisteredRunner(
            RunnerScope.from_api_path(str(scope)), runner_id, runner_name(ref.project)
        )
    except InputError as error:
        raise OperationError(
            f"the runner recorded in stack {ref.stack_name} cannot be read: {error.message}"
        ) from error


@contextmanager
def _destroy_hint_on_interrupt(context: RunContext, secrets_provider: str | None) -> Iterator[None]:
    """An interrupted destroy says how to finish it."""
    try:
        yield
    except Interrupted as error:
        error.hint = destroy_hint(context, error.hint, secrets_provider)
        raise


def destroy_hint(
    context: RunContext,
    hint: str | None,
    secrets_provider: str | None,
    *,
    server: str | None = None,
) -> str:
    """``hint`` followed by the command that removes what a failed run kept.

    The command names the run's ``secrets_provider`` unless it is the passphrase (the
    default): a stack whose secrets a KMS key encrypts is destroyed with that key. With
    ``server`` (a ``--server`` create: the host is the server's), it names the server
    instead, which holds the state. URLs are quoted for the shell: a ``?region=`` left
    bare is a glob (zsh refuses it).
    """
    import shlex

    command = f"mapt aws host destroy --project-name {context.project_name}"
    if server is not None:
        command += f" --server {shlex.quote(server)}"
        created = f"The host is made on the server; destroy it with: {command}"
        return f"{hint.rstrip('.')}. {created}" if hint else created
    if context.backend_url:
        command += f" --backed-url {shlex.quote(context.backend_url)}"
    if secrets_provider not in (None, "passphrase"):
        command += f" --secrets-provider {shlex.quote(secrets_provider)}"
    created = f"What was created so far is kept in state; remove it with: {command}"
    return f"{hint.rstrip('.')}. {created}" if hint else created
