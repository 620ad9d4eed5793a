"""A stand-in for the Pulumi CLI: a ``PulumiCommand`` that records and answers commands.

The Automation API drives the CLI only through ``PulumiCommand.run(args, cwd, env)``;
injected with ``LocalWorkspaceOptions(pulumi_command=...)`` (``PulumiEngine`` takes it
as ``pulumi_command``) this fake sees exactly the arguments, working directory and
environment the real CLI would, and answers like it: stack select/init/rm, config,
up/preview/destroy (streaming engine events over the gRPC event log, as Pulumi
>= 3.206 does), stack output, export and history. Failures are CLI transcripts captured
from a real CLI (``tests.stacks.transcripts``) turned into errors by the SDK's own
``create_command_error``. Like the real CLI, ``stack init`` runs before ``up``, so a
stack whose ``up`` failed exists afterwards, and it writes the stack's checkpoint into
a ``file://`` backend (``stack rm`` removes it): ``PulumiEngine`` reads there whether a
stack exists. ``add_stack`` makes one that exists already.
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

from mapt.stacks import StackRef
from tests.stacks import transcripts

# How Pulumi marks a secret in exported state (resource.SigKey: resource.SecretSig).
SECRET_SIGNATURE = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


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
    export_text: str | None = None  # what `stack export` prints instead of the outputs

    def __post_init__(self) -> None:
        # PulumiCommand.__init__ would run ``pulumi version``; set what it would set.
        self.command = "/opt/fake/bin/pulumi"
        self.version = VersionInfo.parse(self.cli_version)

    def add_stack(self, ref: StackRef) -> None:
        """A stack that exists before the test's commands, as mapt left it: its checkpoint
        written, and the backend's passphrase file that encrypted it."""
        from mapt.stacks import resolve_backend, secrets_setup
        from mapt.stacks._backend import prepare_backend

        backend = resolve_backend(ref.backend_url)
        prepare_backend(backend)
        secrets_setup(backend, None)
        self.stacks.add(ref.stack_name)
        _write_checkpoint(ref.backend_url, ref.project, ref.stack_name)

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
        if verb in ("stack select", "stack output", "stack export") and stack not in self.stacks:
            missing = transcripts.load("stack_not_found")
            stderr = missing.stderr.replace("'host-demo'", f"'{stack}'")
            raise create_command_error(CommandResult(missing.stdout, stderr, missing.code))
        backend_url = additional_env.get("PULUMI_BACKEND_URL")
        if verb == "stack init":
            self.stacks.add(args[2])
            _write_checkpoint(backend_url, project["name"], args[2])
        elif verb == "stack rm":
            self.stacks.discard(args[-1])
            _checkpoint_file(backend_url, project["name"], args[-1]).unlink(missing_ok=True)
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
        elif verb == "stack export":
            assert "--show-secrets" in args, "mapt reads outputs with their plain text"
            if self.export_text is not None:
                return CommandResult(self.export_text, "", 0)
            outputs = {
                k: ({**SECRET_SIGNATURE, "plaintext": json.dumps(v)} if secret else v)
                for k, (v, secret) in self.outputs.items()
            }
            root = urn(stack or "", project["name"], "pulumi:pulumi:Stack", "root")
            resources = [{"urn": root, "type": "pulumi:pulumi:Stack", "outputs": outputs}]
            return CommandResult(
                json.dumps({"version": 3, "deployment": {"resources": resources}}), "", 0
            )
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


def _checkpoint_file(backend_url: str | None, project: str, stack: str) -> Path:
    """Where the DIY backend keeps the stack's checkpoint (a ``file://`` backend only)."""
    assert backend_url and backend_url.startswith("file://"), backend_url
    return Path(backend_url.removeprefix("file://")) / ".pulumi/stacks" / project / f"{stack}.json"


def _write_checkpoint(backend_url: str | None, project: str, stack: str) -> None:
    """The checkpoint ``stack init`` writes: the stack, no deployment yet."""
    if backend_url is not None and backend_url.startswith("s3://"):
        return  # the S3 tests do not read existence back
    path = _checkpoint_file(backend_url, project, stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"version": 3, "checkpoint": {"stack": f"organization/{project}/{stack}"}}
    path.write_text(json.dumps(document))


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None
