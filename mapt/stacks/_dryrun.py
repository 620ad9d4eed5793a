"""Run an inline Pulumi program in-process under Pulumi's mocks, recording what it does.

This is what ``--dry-run`` shows a user (the resources a program would register and
the outputs it would export) and what tests use to run whole programs offline: no
Pulumi CLI, no provider plugin, no credentials, no state written.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import Mocks
from pulumi.runtime.mocks import MockMonitor

from mapt.core import get_logger

_log = get_logger(__name__)

InvokeAnswer = Callable[[Mapping[str, Any]], dict[str, Any]]
ComputedAttributes = Callable[[str, Mapping[str, Any]], dict[str, Any]]


# The root stack's type: the engine leaves it out of its children's URNs.
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Registration:
    """What a program said about a resource besides its inputs, as the engine hears it.

    ``urn``, ``parent``, ``provider`` (``<urn>::<id>`` of an explicit provider, empty for
    a default one) and ``dependencies`` are URNs as the Pulumi engine writes them:
    the root stack is not part of a child's type (the mock monitor's URNs put it
    there; see ``engine_urn``). The options are the ones an engine acts on.
    """

    urn: str
    parent: str = ""
    provider: str = ""
    dependencies: tuple[str, ...] = ()
    custom: bool = True
    delete_before_replace: bool = False
    ignore_changes: tuple[str, ...] = ()
    additional_secret_outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisteredResource:
    """One resource a program registered: its type token, logical name and inputs."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    registration: Registration | None = None


def engine_urn(mock_urn: str) -> str:
    """The URN the Pulumi engine gives a resource whose mock URN is ``mock_urn``.

    The mock monitor qualifies a child's type with its parent's, the root stack too
    (``pulumi:pulumi:Stack$aws:ec2/vpc:Vpc``); the engine leaves the root stack out.
    A provider reference (``<urn>::<id>``) keeps its id.
    """
    return mock_urn.replace(f"::{STACK_TYPE}$", "::")


class _RegistrationMonitor(MockMonitor):
    """The mock monitor, telling its mocks what each registration said besides inputs.

    ``Mocks.new_resource`` sees only type, name, inputs and provider; engines that keep
    state need the URN, parent, dependencies and options too. The monitor runs each
    registration on one thread, so a thread-local hands them over.
    """

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        # Plain ``Mocks`` (a caller's own) have nowhere to take it: they get none.
        self._recording = mocks if isinstance(mocks, RecordingMocks) else None

    def RegisterResource(self, request: Any) -> Any:
        if self._recording is None:
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self._recording._current.registration = Registration(
            urn=engine_urn(self.make_urn(request.parent, request.type, request.name)),
            parent=engine_urn(request.parent),
            provider=engine_urn(request.provider),
            dependencies=tuple(engine_urn(urn) for urn in request.dependencies),
            custom=bool(request.custom),
            delete_before_replace=bool(request.deleteBeforeReplace),
            ignore_changes=tuple(request.ignoreChanges),
            additional_secret_outputs=tuple(request.additionalSecretOutputs),
        )
        try:
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        finally:
            self._recording._current.registration = None


@dataclass(frozen=True)
class Invocation:
    """One provider function a program invoked (e.g. ``aws:ec2/getAmi:getAmi``)."""

    token: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class ProgramOutput:
    """An exported stack output; ``value`` is None when not known before deployment."""

    value: Any
    secret: bool
    known: bool


class RecordingMocks(Mocks):
    """Pulumi mocks that record every resource and invoke, and answer invokes on request.

    Invokes are answered by functions registered with ``answer(token, fn)``; an invoke
    with no answer fails the program with a message naming the token, so a program
    never runs on a silently empty lookup. ``computed`` adds provider-computed
    attributes (e.g. an ARN) to a resource's state from its type and inputs.
    """

    def __init__(
        self,
        answers: Mapping[str, InvokeAnswer] | None = None,
        computed: ComputedAttributes | None = None,
    ) -> None:
        self.resources: list[RegisteredResource] = []
        self.invocations: list[Invocation] = []
        self._answers: dict[str, InvokeAnswer] = dict(answers or {})
        self._computed = computed
        self._current = threading.local()
        self._recorded = threading.Lock()

    def answer(self, token: str, fn: InvokeAnswer) -> None:
        """Answer invokes of ``token`` with ``fn(args)``."""
        self._answers[token] = fn

    def resources_of_type(self, type_token: str) -> list[RegisteredResource]:
        """The registered resources of one type, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def registration(self) -> Registration | None:
        """What the resource ``new_resource`` is handling said besides its inputs."""
        return getattr(self._current, "registration", None)

    def record(self, args: pulumi.runtime.MockResourceArgs) -> RegisteredResource:
        """Record the resource being registered (in ``new_resource``) and return it."""
        resource = RegisteredResource(args.typ, args.name, dict(args.inputs), self.registration())
        with self._recorded:  # registrations run on several threads at once
            self.resources.append(resource)
        return resource

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = self.record(args).inputs
        state = dict(inputs)
        if self._computed is not None:
            state.update(self._computed(args.typ, inputs))
        return f"{args.name}-id", state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        call_args = dict(args.args)
        self.invocations.append(Invocation(args.token, call_args))
        try:
            answer = self._answers[args.token]
        except KeyError:
            raise LookupError(f"no mock answer for invoke {args.token}") from None
        # An empty failure list, not None: Pulumi's mock monitor iterates it.
        return answer(call_args), []


@dataclass(frozen=True)
class ProgramRun:
    """What a program did under mocks: its resources, invokes and exported outputs."""

    resources: list[RegisteredResource]
    invocations: list[Invocation]
    outputs: dict[str, ProgramOutput] = field(default_factory=dict)

    def plain_outputs(self) -> dict[str, Any]:
        """The outputs' values, as a program reading the stack would see them."""
        return {name: out.value for name, out in self.outputs.items()}


class _WorkerLoops:
    """The event loops of the threads that run a program's registrations and invokes.

    The runtime sends each mock-monitor call to its loop's default executor, and the
    mock monitor gives each of those threads an event loop it never closes
    (``_ensure_event_loop``). Each was left for the garbage collector, whose
    ``BaseEventLoop.__del__`` warns of an unclosed loop, even at interpreter exit,
    after the command's last line. Here each executor thread gets its loop up front
    (so the monitor finds it and makes none) and the run closes them all when it ends.
    """

    def __init__(self) -> None:
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(thread_name_prefix="pulumi-mocks", initializer=self._open)

    def _open(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        with self._lock:
            self._loops.append(loop)

    def close(self) -> None:
        """Close the loops, once their threads have ended (the executor is shut down)."""
        with self._lock:
            for loop in self._loops:
                loop.close()
            self._loops.clear()


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    _log.debug("program run: %s", context.get("message"), exc_info=context.get("exception"))


def run_program(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    mocks: RecordingMocks | None = None,
    preview: bool = True,
    config: Mapping[str, str] | None = None,
) -> ProgramRun:
    """Run ``program`` under ``mocks`` and return what it registered and exported.

    Each run gets a fresh context and event loop, so runs are independent of one
    another and of any program the caller is itself running. Errors raised by the
    program, or inside its ``apply`` callbacks, propagate unchanged. ``config`` is the
    stack config the program reads (``pulumi.Config("aws").get("region")`` reads
    ``aws:region``), as the real engine would pass it.
    """
    mocks = mocks if mocks is not None else RecordingMocks()

    def run_isolated() -> dict[str, ProgramOutput]:
        from pulumi.runtime.settings import SETTINGS, get_root_resource
        from pulumi.runtime.stack import wait_for_rpcs

        # Work a failed earlier run left queued belongs to a closed loop: drop it.
        SETTINGS.rpc_manager.clear()
        SETTINGS.outputs.clear()
        # Config lives in a context variable, so this run's config stays in this run.
        pulumi.runtime.set_all_config(dict(config or {}))
        loop = asyncio.new_event_loop()
        # A failed registration leaves futures nobody awaits; asyncio would log
        # "Future exception was never retrieved" for each on stderr. The failure itself
        # is raised to the caller.
        loop.set_exception_handler(_quiet)
        workers = _WorkerLoops()
        loop.set_default_executor(workers.executor())
        asyncio.set_event_loop(loop)
        # set_mocks creates the root stack resource; its futures bind to this loop.
        pulumi.runtime.set_mocks(
            mocks,
            project=project,
            stack=stack,
            preview=preview,
            monitor=_RegistrationMonitor(mocks),
        )
        root = get_root_resource()

        async def execute() -> dict[str, ProgramOutput]:
            program()
            await wait_for_rpcs()
            exported = getattr(root, "outputs", {})
            outputs: dict[str, ProgramOutput] = {}
            for name, value in exported.items():
                output = pulumi.Output.from_input(value)
                known = await output.is_known()
                outputs[name] = ProgramOutput(
                    value=await output.future() if known else None,
                    secret=await output.is_secret(),
                    known=known,
                )
            return outputs

        try:
            return loop.run_until_complete(execute())
        finally:
            # A program that failed leaves registrations in flight: cancel them, so
            # they end here instead of being destroyed half-way when the loop closes.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_default_executor())  # joins its threads
            workers.close()
            asyncio.set_event_loop(None)
            loop.close()

    outputs = contextvars.Context().run(run_isolated)
    return ProgramRun(list(mocks.resources), list(mocks.invocations), outputs)
