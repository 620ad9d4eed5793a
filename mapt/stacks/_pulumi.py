"""The real engine: inline Python programs through the Pulumi Automation API.

Each operation builds a ``LocalWorkspace`` (``StateReadingWorkspace``, which starts the
CLI less often) in a private temporary directory (removed afterwards: the SDK's own
default leaves a ``/tmp/automation-*`` directory per call) with project settings naming
the backend, the environment the CLI needs and the secrets setup, then runs one Pulumi
command sequence and maps its failure to a ``MaptError``. Credentials stay in the
environment the CLI inherits; only plain, non-secret provider settings (such as
``aws:region``) are written as stack config.
"""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mapt.core import (
    MaptError,
    OperationError,
    cancellable,
    get_logger,
    redact,
    register_secret,
)
from mapt.stacks._backend import Backend, prepare_backend, resolve_backend
from mapt.stacks._cli import pulumi_command, pulumi_home
from mapt.stacks._engine import PlannedStep, Program, StackPreview, StackRef, check_config
from mapt.stacks._errors import map_command_error, stack_not_found
from mapt.stacks._inventory import stack_exists
from mapt.stacks._progress import Progress, step_op, urn_name
from mapt.stacks._secrets import secrets_setup, validate_secrets_provider
from mapt.stacks._state_files import _BackendStateFiles

if TYPE_CHECKING:
    from pulumi.automation import (
        CommandError,
        EngineEvent,
        LocalWorkspace,
        OutputMap,
        PulumiCommand,
    )

_log = get_logger(__name__)

# Pulumi log verbosity with --debug ("anything >3 is very verbose").
DEBUG_LOG_VERBOSITY = 3


def _noop_program() -> None:
    """The program given to destroy: Pulumi does not run it, but inline mode needs one."""


@dataclass
class _GuardedProgram:
    """Runs the caller's program, waits for what it started, and keeps what it raised.

    Pulumi reports an exception in an inline program only as text; a ``MaptError``
    raised there (say, ``NoCapacityError``) must reach the caller as itself, with its
    exit code. An ``Output.apply`` callback runs after the program has returned, while
    the runtime waits for the registrations in flight, so the program hands the runtime
    an awaitable (which it awaits) that does that waiting itself, and sees those errors.

    It also registers the stack's outputs and waits for that: the SDK registers them
    after the program, then checks for work in flight before yielding to the event
    loop, so when nothing else is pending (a program that exports only plain values,
    as the spot stack's does) it tells the engine it is done before the outputs
    are sent, and the update records none.
    """

    program: Program
    error: BaseException | None = None

    def __call__(self) -> Awaitable[None]:
        try:
            self.program()
        except BaseException as error:
            self.error = error
            raise
        return self._settled()

    async def _settled(self) -> None:
        import asyncio

        from pulumi.runtime.settings import get_root_resource
        from pulumi.runtime.stack import wait_for_rpcs

        try:
            await wait_for_rpcs()
            # Stack._finish registers the outputs once; the SDK's own call after the
            # program is then a no-op.
            get_root_resource()._finish()  # type: ignore[union-attr]
            await asyncio.sleep(0)  # let the registration start
            await wait_for_rpcs()
        except BaseException as error:
            self.error = error
            raise

    def failure(self, error: CommandError, stack_name: str) -> MaptError | None:
        """The error to raise for a failed command if the program caused it, else None.

        A ``MaptError`` is raised as itself. Another exception becomes an
        ``OperationError`` with its own message when Pulumi says the program failed:
        Pulumi's text may name a wrapper instead (an error raised in the ``apply`` of an
        exported output reads "While processing input: 'user_data', ... <Output object>").
        """
        from pulumi.automation.errors import InlineSourceRuntimeError

        if isinstance(self.error, MaptError):
            return self.error
        if self.error is None or not isinstance(error, InlineSourceRuntimeError):
            return None
        message = " ".join(str(self.error).split()) or type(self.error).__name__
        return OperationError(redact(f"the program of stack {stack_name} failed: {message}"))


class PulumiEngine(_BackendStateFiles):
    """The ``Engine`` that deploys with the Pulumi CLI (found and version-checked first).

    ``secrets_provider`` is passed to new stacks (``awskms://...``; see
    ``mapt.stacks._secrets`` for the passphrase rules). ``debug`` raises Pulumi's log
    verbosity and logs its output at debug level. ``pulumi_command`` replaces CLI
    discovery (tests inject a fake). ``env`` adds environment variables for the CLI.
    Progress goes to ``progress_stream`` (default stderr), live when it is a terminal
    unless ``live`` says otherwise.
    """

    def __init__(
        self,
        *,
        secrets_provider: str | None = None,
        debug: bool = False,
        pulumi_command: PulumiCommand | None = None,
        env: Mapping[str, str] | None = None,
        progress_stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self._secrets_provider = validate_secrets_provider(secrets_provider)
        self._debug = debug
        self._command = pulumi_command
        self._env = dict(env or {})
        self._progress_stream = progress_stream
        self._live = live

    # -- the Engine operations ----------------------------------------------------------
    def exists(self, ref: StackRef) -> bool:
        """Whether the backend holds the stack's checkpoint: read there, as ``host list``
        reads state, without starting the CLI (it is still found and checked first, so a
        missing one fails before anything else does)."""
        backend = resolve_backend(ref.backend_url)
        self._pulumi()
        return stack_exists(backend, ref.project, ref.stack_name)

    def outputs(self, ref: StackRef) -> dict[str, Any]:
        """The stack's outputs; a missing stack is ``StackNotFoundError``.

        Whether it exists is read first, as ``exists`` reads it: reading writes nothing,
        and the workspace's setup may (the backend's folder, its passphrase file). Then
        one CLI start (``StateReadingWorkspace.stack_outputs``), which names the stack
        itself and fails on a stack removed meanwhile.
        """
        from pulumi.automation.errors import CommandError

        if not self.exists(ref):
            raise stack_not_found(ref.stack_name, resolve_backend(ref.backend_url).url)
        with self._workspace(ref) as (backend, workspace):
            try:
                return _plain(workspace.stack_outputs(ref.stack_name))
            except CommandError as error:
                raise self._mapped(error, ref, backend, "stack export") from error

    def up(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
        refresh: bool = False,
        replace: Sequence[str] = (),
    ) -> dict[str, Any]:
        from pulumi.automation import ConfigValue, Stack
        from pulumi.automation.errors import CommandError

        settings = check_config(config)
        guarded = _GuardedProgram(program)
        with self._workspace(ref) as (backend, workspace):
            progress = self._progress(ref, "up")
            try:
                stack = Stack.create_or_select(ref.stack_name, workspace)
                if settings:
                    stack.set_all_config(
                        {
                            key: ConfigValue(value=value, secret=False)
                            for key, value in settings.items()
                        }
                    )
                with progress, cancellable(_cancel_cli):
                    result = stack.up(
                        program=guarded,
                        refresh=True if refresh else None,
                        replace=list(replace) or None,
                        on_event=progress,
                        **self._run_options(),
                    )
            except CommandError as error:
                caused = guarded.failure(error, ref.stack_name)
                raise caused or self._mapped(
                    error, ref, backend, "up", progress.diagnostics
                ) from error
            _require_success(result.summary.result, ref, "up", progress)
            return _plain(result.outputs)

    def preview(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
    ) -> StackPreview:
        """What ``up`` would change. A stack that did not exist is removed again after."""
        from pulumi.automation import ConfigValue, Stack
        from pulumi.automation.errors import CommandError, StackNotFoundError

        settings = check_config(config)
        guarded = _GuardedProgram(program)
        steps: list[PlannedStep] = []
        with self._workspace(ref) as (backend, workspace):
            progress = self._progress(ref, "preview")

            def on_event(event: EngineEvent) -> None:
                pre = event.resource_pre_event
                if pre is not None:
                    meta = pre.metadata
                    steps.append(PlannedStep(step_op(meta.op), meta.type, urn_name(meta.urn)))
                progress.on_event(event)

            created = False
            try:
                try:
                    stack = Stack.select(ref.stack_name, workspace)
                except StackNotFoundError:
                    stack = Stack.create(ref.stack_name, workspace)
                    created = True
                try:
                    if settings:
                        stack.set_all_config(
                            {k: ConfigValue(value=v, secret=False) for k, v in settings.items()}
                        )
                    with progress, cancellable(_cancel_cli):
                        result = stack.preview(
                            program=guarded, on_event=on_event, **self._run_options()
                        )
                finally:
                    if created:
                        workspace.remove_stack(ref.stack_name)
            except CommandError as error:
                caused = guarded.failure(error, ref.stack_name)
                raise caused or self._mapped(
                    error, ref, backend, "preview", progress.diagnostics
                ) from error
            except RuntimeError as error:  # the SDK's "summary event never found"
                raise OperationError(
                    f"pulumi preview of stack {ref.stack_name} ended without a summary: {error}"
                ) from error
        changes = {step_op(op): int(count) for op, count in (result.change_summary or {}).items()}
        planned = tuple(step for step in steps if step.type != "pulumi:pulumi:Stack")
        return StackPreview(stack_name=ref.stack_name, changes=changes, steps=planned)

    def destroy(self, ref: StackRef) -> bool:
        """Destroy the stack's resources and remove it; ``False`` when it does not exist.

        Whether it exists is read first, as ``exists`` reads it, so a stack that never
        existed writes nothing (no backend folder, no passphrase file) and needs no
        passphrase: the backend may hold other stacks encrypted with one kept elsewhere.
        """
        from pulumi.automation import Stack
        from pulumi.automation.errors import CommandError, StackNotFoundError

        if not self.exists(ref):
            _log.info("stack %s does not exist; nothing to destroy", ref.stack_name)
            return False
        with self._workspace(ref) as (backend, workspace):
            try:
                stack = Stack.select(ref.stack_name, workspace)
            except StackNotFoundError:
                _log.info("stack %s was removed meanwhile; nothing to destroy", ref.stack_name)
                return False
            except CommandError as error:
                raise self._mapped(error, ref, backend, "stack select") from error
            progress = self._progress(ref, "destroy")
            try:
                with progress, cancellable(_cancel_cli):
                    result = stack.destroy(
                        program=_noop_program, on_event=progress, **self._run_options()
                    )
                _require_success(result.summary.result, ref, "destroy", progress)
                workspace.remove_stack(ref.stack_name)
            except CommandError as error:
                raise self._mapped(error, ref, backend, "destroy", progress.diagnostics) from error
            return True

    # -- plumbing ---------------------------------------------------------------------------
    def _pulumi(self) -> PulumiCommand:
        if self._command is None:
            self._command = pulumi_command()
        return self._command

    @contextmanager
    def _workspace(self, ref: StackRef) -> Iterator[tuple[Backend, LocalWorkspace]]:
        """A workspace for ``ref``'s project and backend, in a directory removed after.

        Checks come first, cheapest first, so a bad URL or a missing CLI fails before
        anything is written: backend URL, Pulumi CLI, then the backend directory and
        secrets (which may create the passphrase file).
        """
        from pulumi.automation import ProjectBackend, ProjectSettings

        from mapt.stacks._workspace import StateReadingWorkspace

        backend = resolve_backend(ref.backend_url)
        command = self._pulumi()
        prepare_backend(backend)
        secrets = secrets_setup(backend, self._secrets_provider)
        env = {
            # The project settings name the backend too; the variable also overrides a
            # PULUMI_BACKEND_URL the user may have set for other projects.
            "PULUMI_BACKEND_URL": backend.url,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            **secrets.env,
            **self._env,
        }
        with (
            tempfile.TemporaryDirectory(prefix="mapt-pulumi-") as work_dir,
            _forgetting_workspace_settings(
                pulumi_home({**os.environ, **env}), ref.project, work_dir
            ),
        ):
            settings = ProjectSettings(
                name=ref.project,
                runtime="python",
                main=work_dir,
                description="mapt",
                backend=ProjectBackend(url=backend.url),
            )
            workspace = StateReadingWorkspace(
                backend=backend,
                project=ref.project,
                work_dir=work_dir,
                project_settings=settings,
                env_vars=env,
                secrets_provider=secrets.provider,
                pulumi_command=command,
            )
            yield backend, workspace

    def _progress(self, ref: StackRef, operation: str) -> Progress:
        return Progress(ref.stack_name, operation, stream=self._progress_stream, live=self._live)

    def _run_options(self) -> dict[str, Any]:
        """Arguments common to up/preview/destroy: plain text, and verbosity for --debug."""
        options: dict[str, Any] = {"color": "never"}
        if self._debug:
            options.update(
                log_verbosity=DEBUG_LOG_VERBOSITY,
                log_flow=True,
                debug=True,
                on_output=lambda line: _log.debug("pulumi: %s", line),
                on_error=lambda line: _log.debug("pulumi: %s", line),
            )
        return options

    def _mapped(
        self,
        error: CommandError,
        ref: StackRef,
        backend: Backend,
        operation: str,
        diagnostics: list[str] | None = None,
    ) -> MaptError:
        mapped = map_command_error(
            error,
            stack_name=ref.stack_name,
            backend_url=backend.url,
            operation=operation,
            diagnostics=diagnostics or (),
        )
        _log.debug("pulumi %s failed: %s", operation, error)
        return mapped


def _cancel_cli(signal_number: int) -> None:
    """Ask the running Pulumi CLI to cancel, as Ctrl-C would: SIGINT, once.

    Pulumi then lets the resource operations in flight finish, saves the state and
    exits, and the operation ends with ``Interrupted``. A SIGINT is not passed on: a
    terminal's Ctrl-C reaches the whole foreground process group, the CLI included,
    and a second SIGINT would make Pulumi stop at once, state unsaved. The CLI is the
    only process this one runs while an operation is under way.
    """
    import psutil

    if signal_number == signal.SIGINT:
        return
    for child in psutil.Process().children():
        try:
            child.send_signal(signal.SIGINT)
        except psutil.Error:
            continue  # it ended meanwhile
        _log.warning("asked the Pulumi CLI (pid %s) to cancel the operation", child.pid)


@contextmanager
def _forgetting_workspace_settings(home: Path, project: str, work_dir: str) -> Iterator[None]:
    """Remove, at the end, the settings file the CLI keeps for the workspace directory.

    ``pulumi stack select`` remembers the selected stack of each project directory in
    ``$PULUMI_HOME/workspaces/<project>-<sha1 of its Pulumi.yaml path>-workspace.json``
    (``pkg/workspace/workspace.go``). Every operation here runs in a new temporary
    directory, so each would leave one such file behind for good.
    """
    try:
        yield
    finally:
        project_file = os.path.realpath(os.path.join(work_dir, "Pulumi.yaml"))
        digest = hashlib.sha1(project_file.encode(), usedforsecurity=False).hexdigest()
        settings = home / "workspaces" / f"{project}-{digest}-workspace.json"
        try:
            settings.unlink(missing_ok=True)
        except OSError as error:
            _log.debug("cannot remove %s: %s", settings, error)


def _require_success(result: str, ref: StackRef, operation: str, progress: Progress) -> None:
    """Refuse any outcome but ``succeeded``: a failed update is never reported as success."""
    if result != "succeeded":
        detail = "; ".join(progress.diagnostics[-3:]) or "no diagnostics"
        raise OperationError(
            f"pulumi {operation} of stack {ref.stack_name} ended as {result!r}: {detail}"
        )


def _plain(outputs: OutputMap) -> dict[str, Any]:
    """Output values as plain data; secret strings are registered for log redaction."""
    plain: dict[str, Any] = {}
    for key, output in outputs.items():
        if output.secret and isinstance(output.value, str):
            register_secret(output.value)
        plain[key] = output.value
    return plain


__all__ = ["PulumiEngine"]
