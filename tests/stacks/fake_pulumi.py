"""A stand-in for the Pulumi CLI: a ``PulumiCommand`` that records and answers commands.

The Automation API drives the CLI only through ``PulumiCommand.run(args, cwd, env)``;
injected with ``LocalWorkspaceOptions(pulumi_command=...)`` (``PulumiEngine`` takes it
as ``pulumi_command``) this fake sees exactly the arguments, working directory and
environment the real CLI would, and answers like it: stack select/init/rm, config,
up/preview/destroy (streaming engine events over the gRPC event log, as Pulumi
>= 3.206 does), stack output and history. Failures are CLI transcripts captured from
a real CLI (``tests.stacks.transcripts``) turned into errors by the SDK's own
``create_command_error``. Like the real CLI, ``stack init`` runs before ``up``, so a
stack whose ``up`` failed exists afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from pulumi.automation import CommandResult, PulumiCommand
from pulumi.automation.errors import create_command_error
from pulumi.runtime.proto import events_pb2, events_pb2_grpc
from semver import VersionInfo

from tests.stacks import transcripts


@dataclass
class Call:
    """One CLI invocation: arguments, the extra environment, and the project file."""

    args: list[str]
    env: dict[str, str]
    cwd: str
    project: dict[str, Any]
    files: dict[str, str]

    @property
    def verb(self) -> str:
        """``stack select``, ``config set-all``, ``up``... (the words before any flag)."""
        words = []
        for arg in self.args:
            if arg.startswith("-"):
                break
            words.append(arg)
        return " ".join(words[:2]) if words[0] in ("stack", "config") else words[0]


def urn(stack: str, project: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


@dataclass
class FakePulumi(PulumiCommand):
    """The fake CLI. ``stacks`` exist; ``failures`` maps a verb to a canned transcript."""

    stacks: set[str] = field(default_factory=set)
    outputs: dict[str, tuple[Any, bool]] = field(default_factory=dict)  # name -> (value, secret)
    failures: dict[str, CommandResult] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    result: str = "succeeded"
    calls: list[Call] = field(default_factory=list)
    on_up: Callable[[Call], None] | None = None
    cli_version: str = "3.272.0"

    def __post_init__(self) -> None:
        # PulumiCommand.__init__ would run ``pulumi version``; set what it would set.
        self.command = "/opt/fake/bin/pulumi"
        self.version = VersionInfo.parse(self.cli_version)

    def verbs(self) -> list[str]:
        return [call.verb for call in self.calls]

    def call(self, verb: str) -> Call:
        return next(c for c in self.calls if c.verb == verb)

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: Any = None,
        on_error: Any = None,
    ) -> CommandResult:
        work = Path(cwd)
        files = {p.name: p.read_text() for p in work.iterdir() if p.is_file()}
        project = yaml.safe_load(files.get("Pulumi.yaml", "{}")) or {}
        call = Call(list(args), dict(additional_env), cwd, project, files)
        self.calls.append(call)
        failure = self.failures.get(call.verb)
        if failure is not None:
            raise create_command_error(failure)
        stack = _flag(args, "--stack")
        verb = call.verb
        if verb in ("stack select", "stack output") and stack not in self.stacks:
            missing = transcripts.load("stack_not_found")
            stderr = missing.stderr.replace("'host-demo'", f"'{stack}'")
            raise create_command_error(CommandResult(missing.stdout, stderr, missing.code))
        if verb == "stack init":
            self.stacks.add(args[2])
        elif verb == "stack rm":
            self.stacks.discard(args[-1])
        elif verb in ("up", "preview", "destroy"):
            self._stream_events(args)
            if verb == "up" and self.on_up is not None:
                self.on_up(call)
            if verb == "destroy":
                self.outputs.clear()
        elif verb == "stack output":
            shown = "--show-secrets" in args
            body = {
                k: (v if shown or not secret else "[secret]")
                for k, (v, secret) in self.outputs.items()
            }
            return CommandResult(json.dumps(body), "", 0)
        elif verb == "stack history":
            entry = {
                "kind": "update",
                "startTime": "2026-11-22T00:00:00.000Z",
                "endTime": "2026-11-22T00:01:00.000Z",
                "message": "",
                "environment": {},
                "config": {},
                "result": self.result,
                "version": 1,
            }
            return CommandResult(json.dumps([entry]), "", 0)
        return CommandResult("", "", 0)

    def _stream_events(self, args: list[str]) -> None:
        address = _flag(args, "--event-log")
        if not address:
            return
        assert address.startswith("tcp://"), address
        events = list(self.events)
        if "preview" in args and not any("summaryEvent" in e for e in events):
            events.append({"summaryEvent": {"resourceChanges": {}}})
        events.append({"cancelEvent": {}})
        with grpc.insecure_channel(address[len("tcp://") :]) as channel:
            stub = events_pb2_grpc.EventsStub(channel)
            requests = (
                events_pb2.EventRequest(event=json.dumps({"sequence": i, "timestamp": 0, **e}))
                for i, e in enumerate(events)
            )
            stub.StreamEvents(requests)


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None
