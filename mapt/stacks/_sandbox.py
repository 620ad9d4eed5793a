"""The sandbox engine: a program's resources applied to an AWS-compatible endpoint.

``SandboxEngine`` runs the same inline program the Pulumi engine would, under Pulumi's
mocks (``run_program``), and makes every resource it declares for real through the
``SandboxKind`` of its type: boto3 calls to the endpoint botocore is pointed at
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``; the CLI checks it is on
loopback), in the region of the resource's ``aws`` provider. Invokes are answered by
``SandboxInvoke`` functions the same way. The kinds live with the programs
(``mapt.targets``); this layer only runs them.

State is what the Pulumi CLI writes to a DIY backend: a v3 checkpoint at
``.pulumi/stacks/<project>/<stack>.json`` (file or s3 backend) with one entry per
resource (URN, type, id, inputs, outputs, parent, dependencies, provider), secrets
encrypted with the stack's passphrase as Pulumi does (``_passphrase``), and the same
per-stack lock files under ``.pulumi/locks/``. So ``mapt aws host list``, ``sweep``,
``--force-destroy`` and the Pulumi CLI itself read it like any other state.

How an ``up`` changes what exists, per URN, as Pulumi would:

- declared with the recorded inputs (ignoring ``ignore_changes``): kept as it is, no call;
- declared with other inputs, or named in ``up``'s ``replace``: replaced. The new one
  is created first and the old one deleted at the end, unless the resource says
  ``delete_before_replace`` (a fixed name): then the old one and what depends on it
  go first;
- no longer declared: deleted at the end, dependents before their dependencies;
- with ``refresh``: first forgotten when its kind can tell the endpoint no longer has
  it (``RefreshableKind``), so the program makes it again.

The checkpoint is rewritten after every step, so a failed or interrupted ``up`` leaves
state that names everything that exists: the endpoint's refusal fails the ``up`` with
AWS's error (``aws_error``), and ``destroy`` removes what was made before it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import pulumi

from mapt.core import (
    MaptError,
    OperationError,
    StateLockedError,
    aws_error,
    aws_session,
    cancellable,
    get_logger,
    is_aws_error,
    region_from_environment,
    register_secret,
)
from mapt.stacks._backend import Backend, list_locks, prepare_backend, resolve_backend
from mapt.stacks._dryrun import (
    STACK_TYPE,
    ProgramOutput,
    ProgramRun,
    RecordingMocks,
    Registration,
    engine_urn,
)
from mapt.stacks._engine import PlannedStep, Program, StackPreview, StackRef, check_config
from mapt.stacks._errors import StackNotFoundError, locked_message
from mapt.stacks._inprocess import _InProcessEngine
from mapt.stacks._inventory import (
    _CHECKPOINT_SUFFIXES,
    _SECRET_SIGNATURE,
    _decompress,
    _Store,
    _store,
    _Unreadable,
)
from mapt.stacks._passphrase import PROVIDER_TYPE, PassphraseCrypter, WrongPassphraseError
from mapt.stacks._project_lock import current_user
from mapt.stacks._sandbox_kinds import RefreshableKind, SandboxInvoke, SandboxKind
from mapt.stacks._secrets import another_passphrase_error, passphrase_of, secrets_setup
from mapt.stacks._state_files import _BackendStateFiles

_log = get_logger(__name__)

_PROVIDER_PREFIX = "pulumi:providers:"
# What marks a secret value in a checkpoint (resource.SecretSig) and in the mocks' inputs.
_SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270"
# The only organization of a project-scoped DIY backend (diy/store.go).
_ORGANIZATION = "organization"
_META_KEY = "meta.yaml"
_META = b"version: 1\n"


def _manifest_version() -> str:
    from mapt import __version__

    return f"mapt-sandbox/{__version__}"


# -- state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resource:
    """One resource as a checkpoint records it, values plain (secrets decrypted).

    ``secret_inputs``/``secret_outputs`` name the top-level properties written encrypted.
    ``delete`` marks a resource replaced by a newer one of the same URN and not yet
    deleted (Pulumi's pending delete).
    """

    urn: str
    type: str
    id: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    parent: str = ""
    dependencies: tuple[str, ...] = ()
    provider: str = ""
    custom: bool = True
    secret_inputs: frozenset[str] = frozenset()
    secret_outputs: frozenset[str] = frozenset()
    delete: bool = False

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def provider_ref(self) -> str:
        """How resources name this provider: ``<urn>::<id>``."""
        return f"{self.urn}::{self.id}"

    @property
    def is_provider(self) -> bool:
        return self.type.startswith(_PROVIDER_PREFIX)


@dataclass
class _State:
    """A stack's checkpoint, read: its resources in dependency order and its outputs."""

    resources: list[_Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: frozenset[str] = frozenset()
    secrets: _Secrets | None = None
    key: str | None = None  # where it was read from, relative to .pulumi/


class _Secrets:
    """The stack's crypter, made when a secret is first read or written.

    PBKDF2 costs about a second, so a stack without secrets never pays it.
    """

    def __init__(self, backend: Backend, provider: str | None, salt_state: str | None) -> None:
        self.backend = backend
        self._provider = provider
        self.salt_state = salt_state
        self._passphrase: str | None = None
        self._crypter: PassphraseCrypter | None = None
        self._lock = threading.RLock()

    def passphrase(self) -> str:
        """The passphrase, set up as for the Pulumi engine (which may create its file).

        An ``up`` asks first, before it writes anything: a passphrase file is only
        made for a backend that holds no stacks yet.
        """
        with self._lock:
            if self._passphrase is None:
                self._passphrase = passphrase_of(secrets_setup(self.backend, self._provider))
            return self._passphrase

    def crypter(self) -> PassphraseCrypter:
        with self._lock:
            if self._crypter is None:
                passphrase = self.passphrase()
                if self.salt_state is None:
                    self._crypter = PassphraseCrypter.new(passphrase)
                    self.salt_state = self._crypter.salt_state
                else:
                    try:
                        self._crypter = PassphraseCrypter.from_state(passphrase, self.salt_state)
                    except WrongPassphraseError:
                        raise another_passphrase_error(self.backend.url) from None
            return self._crypter


def _reveal(value: Any) -> tuple[Any, bool]:
    """``value`` with every secret wrapper of the mocks unwrapped; whether it held one."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIGNATURE) == _SECRET_MARK and "value" in value:
            return _reveal(value["value"])[0], True
        revealed = {key: _reveal(item) for key, item in value.items()}
        return {k: v for k, (v, _) in revealed.items()}, any(s for _, s in revealed.values())
    if isinstance(value, list):
        items = [_reveal(item) for item in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _revealed(properties: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """Plain properties and the names of those that held a secret."""
    plain: dict[str, Any] = {}
    secret: set[str] = set()
    for name, value in properties.items():
        plain[name], held = _reveal(value)
        if held:
            secret.add(name)
    return plain, frozenset(secret)


def _encode(
    properties: Mapping[str, Any], secret: frozenset[str], secrets: _Secrets
) -> dict[str, Any]:
    """Properties as a checkpoint holds them: the secret ones encrypted."""
    encoded: dict[str, Any] = {}
    for name, value in properties.items():
        if name in secret:
            text = json.dumps(value, separators=(",", ":"))
            encoded[name] = {
                _SECRET_SIGNATURE: _SECRET_MARK,
                "ciphertext": secrets.crypter().encrypt(text),
            }
        else:
            encoded[name] = value
    return encoded


def _decode(
    properties: Any, secrets: _Secrets | None, where: str
) -> tuple[dict[str, Any], frozenset[str]]:
    """A checkpoint's properties, decrypted, and the names of the secret ones."""
    if properties is None:
        return {}, frozenset()
    if not isinstance(properties, dict):
        raise OperationError(
            f"not a Pulumi checkpoint: the properties of {where} are not an object"
        )
    plain: dict[str, Any] = {}
    secret: set[str] = set()
    for name, value in properties.items():
        plain[name], held = _decrypted(value, secrets)
        if held:
            secret.add(name)
    return plain, frozenset(secret)


def _decrypted(value: Any, secrets: _Secrets | None) -> tuple[Any, bool]:
    """The plain value and whether it held a secret; ``secrets`` None leaves them encrypted."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIGNATURE) == _SECRET_MARK:
            if secrets is None:
                return value, True
            if "ciphertext" in value:
                try:
                    return json.loads(secrets.crypter().decrypt(str(value["ciphertext"]))), True
                except WrongPassphraseError:
                    raise another_passphrase_error(secrets.backend.url) from None
            return json.loads(str(value.get("plaintext", "null"))), True
        items = {key: _decrypted(item, secrets) for key, item in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        listed = [_decrypted(item, secrets) for item in value]
        return [v for v, _ in listed], any(s for _, s in listed)
    return value, False


def _stack_urn(ref: StackRef) -> str:
    return (
        f"urn:pulumi:{ref.stack_name}::{ref.project}::{STACK_TYPE}::{ref.project}-{ref.stack_name}"
    )


def _checkpoint_key(ref: StackRef, suffix: str = ".json") -> str:
    return f"stacks/{ref.project}/{ref.stack_name}{suffix}"


SecretsFor = Callable[[str | None], _Secrets]


def _read_state(
    store: _Store, ref: StackRef, secrets_for: SecretsFor, *, decrypt: bool = True
) -> _State | None:
    """The stack's checkpoint, decrypted; None when there is none. Unreadable: an error.

    Without ``decrypt`` secret values stay as they are, and no passphrase is needed.
    """
    present = set(store.keys(f"stacks/{ref.project}/"))
    found = [
        _checkpoint_key(ref, s) for s in _CHECKPOINT_SUFFIXES if _checkpoint_key(ref, s) in present
    ]
    if not found:
        return None
    key = found[0]
    location = store.location(key)
    try:
        document = json.loads(_decompress(key, store.read(key)))
    except (_Unreadable, ValueError) as error:
        raise OperationError(
            f"cannot read the state of stack {ref.stack_name} at {location}: {error}",
            hint="Repair or remove that file; state that cannot be read is never taken as absent.",
        ) from error
    try:
        latest = document["checkpoint"].get("latest") or {}
        entries = latest.get("resources") or []
        provider_state = latest.get("secrets_providers") or {}
    except (KeyError, AttributeError, TypeError) as error:
        raise OperationError(f"{location} is not a Pulumi checkpoint") from error
    salt_state = None
    if provider_state:
        if provider_state.get("type") != PROVIDER_TYPE:
            raise OperationError(
                f"stack {ref.stack_name} keeps its secrets with {provider_state.get('type')!r}; "
                "the sandbox engine reads passphrase-encrypted state only"
            )
        salt_state = str((provider_state.get("state") or {}).get("salt") or "") or None
    secrets = secrets_for(salt_state)
    state = _State(secrets=secrets, key=key)
    for entry in entries:
        if not isinstance(entry, dict):
            raise OperationError(
                f"{location} is not a Pulumi checkpoint: a resource is not an object"
            )
        urn = str(entry.get("urn", ""))
        outputs, secret_outputs = _decode(entry.get("outputs"), secrets if decrypt else None, urn)
        if entry.get("type") == STACK_TYPE:
            state.outputs, state.secret_outputs = outputs, secret_outputs
            continue
        inputs, secret_inputs = _decode(entry.get("inputs"), secrets if decrypt else None, urn)
        state.resources.append(
            _Resource(
                urn=urn,
                type=str(entry.get("type", "")),
                id=str(entry.get("id", "")),
                inputs=inputs,
                outputs=outputs,
                parent=str(entry.get("parent", "")),
                dependencies=tuple(entry.get("dependencies") or ()),
                provider=str(entry.get("provider", "")),
                custom=bool(entry.get("custom", True)),
                secret_inputs=secret_inputs,
                secret_outputs=secret_outputs,
                delete=bool(entry.get("delete", False)),
            )
        )
    return state


def _checkpoint(
    ref: StackRef,
    resources: list[_Resource],
    outputs: Mapping[str, Any],
    secret_outputs: frozenset[str],
    secrets: _Secrets,
) -> bytes:
    """The v3 checkpoint document (apitype.VersionedCheckpoint) of the stack."""
    stack_entry = {
        "urn": _stack_urn(ref),
        "custom": False,
        "type": STACK_TYPE,
        "outputs": _encode(outputs, secret_outputs, secrets),
    }
    entries: list[dict[str, Any]] = [stack_entry]
    for resource in resources:
        entry: dict[str, Any] = {
            "urn": resource.urn,
            "custom": resource.custom,
            "id": resource.id,
            "type": resource.type,
            "inputs": _encode(resource.inputs, resource.secret_inputs, secrets),
            "outputs": _encode(resource.outputs, resource.secret_outputs, secrets),
            "parent": resource.parent or _stack_urn(ref),
        }
        if resource.delete:
            entry["delete"] = True
        if resource.dependencies:
            entry["dependencies"] = list(resource.dependencies)
        if resource.provider:
            entry["provider"] = resource.provider
        entries.append(entry)
    version = _manifest_version()
    latest: dict[str, Any] = {
        "manifest": {
            "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "magic": hashlib.sha256(version.encode()).hexdigest(),
            "version": version,
        },
        "resources": entries,
    }
    if secrets.salt_state is not None:
        latest["secrets_providers"] = {"type": PROVIDER_TYPE, "state": {"salt": secrets.salt_state}}
    document = {
        "version": 3,
        "checkpoint": {
            "stack": f"{_ORGANIZATION}/{ref.project}/{ref.stack_name}",
            "latest": latest,
        },
    }
    return json.dumps(document, indent=4).encode()


# -- the endpoint ---------------------------------------------------------------------------


class _EndpointAws:
    """boto3 clients for one region of the sandbox endpoint (``SandboxAws``)."""

    def __init__(self, engine: SandboxEngine, region: str | None, what: str) -> None:
        self._engine = engine
        self._region = region
        self._what = what

    @property
    def region(self) -> str:
        if not self._region:
            raise OperationError(
                f"{self._what} has no AWS region: its provider names none and neither does "
                "the environment",
                hint="Set AWS_REGION, or give the program's aws provider a region.",
            )
        return self._region

    def client(self, service: str) -> Any:
        return self._engine._client(service, self.region)


# -- one run of a program -------------------------------------------------------------------


class _Run:
    """One ``up`` (``apply``) or preview of a stack: what is kept, made, replaced, deleted."""

    def __init__(
        self,
        engine: SandboxEngine,
        ref: StackRef,
        store: _Store,
        state: _State | None,
        secrets: _Secrets,
        config: Mapping[str, str],
        *,
        apply: bool,
        replace: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        self.replace = frozenset(replace)  # URNs replaced even when declared the same
        self.ref = ref
        self.store = store
        self.secrets = secrets
        self.apply = apply
        self.config = config
        self.before = state
        old = state.resources if state is not None else []
        self.old = list(old)  # old resources still existing, in dependency order
        self.current = {r.urn: r for r in old if not r.delete}
        self.made: list[_Resource] = []  # made or kept this run, in the order they were
        self.declared: set[str] = set()
        self.steps: list[PlannedStep] = []
        self.failure: MaptError | None = None
        self.cancelled = False
        self.outputs = dict(state.outputs) if state is not None else {}
        self.secret_outputs = state.secret_outputs if state is not None else frozenset()
        self.lock = threading.RLock()

    def cancel(self, signal_number: int) -> None:
        """On SIGINT/SIGTERM: start nothing more, as Pulumi does when cancelled.

        What is being made or deleted finishes and is recorded; the run then ends and
        ``cancellable`` raises ``Interrupted``.
        """
        self.cancelled = True

    # -- the registrations --------------------------------------------------------------
    def register(
        self, type_token: str, name: str, raw_inputs: Mapping[str, Any], reg: Registration
    ) -> tuple[str, dict[str, Any]]:
        if self.failure is not None:  # nothing new starts after a failure, as in Pulumi
            raise OperationError(f"{reg.urn} was not made: {self.failure.message}")
        if self.cancelled:
            raise OperationError(f"{reg.urn} was not made: the run was interrupted")
        try:
            return self._register(type_token, name, raw_inputs, reg)
        except MaptError as error:
            with self.lock:
                self.failure = self.failure or error
            raise

    def _register(
        self, type_token: str, name: str, raw_inputs: Mapping[str, Any], reg: Registration
    ) -> tuple[str, dict[str, Any]]:
        inputs, secret_inputs = _revealed(raw_inputs)
        _check_json(inputs, f"the inputs of {reg.urn}")
        with self.lock:
            self.declared.add(reg.urn)
            old = self.current.get(reg.urn)
        new = _Resource(
            urn=reg.urn,
            type=type_token,
            id="",
            inputs=inputs,
            outputs={},
            parent=reg.parent,
            dependencies=reg.dependencies,
            provider=reg.provider,
            custom=reg.custom,
            secret_inputs=secret_inputs,
            secret_outputs=secret_inputs | frozenset(reg.additional_secret_outputs),
        )
        if (
            old is not None
            and reg.urn not in self.replace
            and old.type == type_token
            and _same(old.inputs, inputs, reg.ignore_changes)
            and self._provider_region(old.provider) == self._provider_region(reg.provider)
        ):
            kept = replace(
                new,
                id=old.id,
                inputs={
                    **inputs,
                    **{k: old.inputs[k] for k in reg.ignore_changes if k in old.inputs},
                },
                outputs=dict(old.outputs),
                secret_outputs=new.secret_outputs | old.secret_outputs,
            )
            self._done(kept, "same", superseded=old)
            return kept.id, dict(kept.outputs)
        op = "create" if old is None else "replace"
        if type_token.startswith(_PROVIDER_PREFIX):
            # Providers are configuration, made and kept locally as the engine does.
            made = replace(new, id=str(uuid.uuid4()), outputs=dict(inputs))
            self._done(made, op, superseded=old)
            return made.id, dict(made.outputs)
        kind = self.engine._kinds.get(type_token)
        if kind is None:
            raise OperationError(
                f"the sandbox cannot make {reg.urn}: no sandbox kind for type {type_token}",
                hint="Only the resource types of mapt's programs can be applied to the sandbox.",
            )
        if not self.apply:
            planned = replace(new, id=f"{name}-id", outputs=dict(inputs))
            self._done(planned, op, superseded=old)
            return planned.id, dict(planned.outputs)
        if old is not None and reg.delete_before_replace:
            self._delete_with_dependents(old)
        aws = self.engine._aws(self._provider_region(reg.provider), reg.urn)
        try:
            applied = kind.create(aws, name, inputs)
        except MaptError:
            raise
        except Exception as error:
            if is_aws_error(error):
                raise _refused(error, reg.urn, aws) from error
            raise OperationError(
                f"the sandbox could not make {reg.urn}: {type(error).__name__}: {error}"
            ) from error
        outputs = {**inputs, **dict(applied.outputs)}
        _check_json(outputs, f"the state the sandbox kind gave {reg.urn}")
        made = replace(new, id=applied.id, outputs=outputs)
        _log.info("sandbox: %s %s (%s)", "replaced" if old else "created", reg.urn, applied.id)
        self._done(made, op, superseded=old)
        return made.id, dict(made.outputs)

    def _done(self, resource: _Resource, op: str, *, superseded: _Resource | None) -> None:
        with self.lock:
            self.made.append(resource)
            self.steps.append(PlannedStep(op, resource.type, resource.name))
            if superseded is not None:
                self.current.pop(resource.urn, None)
                index = _index(self.old, superseded)
                if index is not None:
                    if op == "same":
                        del self.old[index]  # the same resource, now recorded anew
                    else:
                        self.old[index] = replace(superseded, delete=True)
            if self.apply:
                self.save()

    def _provider_region(self, provider_ref: str) -> str | None:
        """The region of the provider a resource names; the stack's default without one."""
        with self.lock:
            for resource in [*self.made, *self.old]:
                if resource.is_provider and resource.provider_ref == provider_ref:
                    region = resource.inputs.get("region")
                    return str(region) if region else None
        return self.config.get("aws:region") or region_from_environment()

    # -- deletions ----------------------------------------------------------------------
    def _delete_with_dependents(self, target: _Resource) -> None:
        """Delete ``target`` and, first, what depends on it (a delete-before-replace)."""
        with self.lock:
            doomed = _dependents(self.old, target)
        for resource in reversed(doomed):
            self.delete(resource)
            with self.lock:
                self.current.pop(resource.urn, None)

    def delete(self, resource: _Resource) -> None:
        """Delete one old resource through its kind and forget it in the state."""
        if not resource.is_provider:
            kind = self.engine._kinds.get(resource.type)
            if kind is None:
                raise OperationError(
                    f"the sandbox cannot delete {resource.urn}: no sandbox kind for type "
                    f"{resource.type}"
                )
            aws = self.engine._aws(self._provider_region(resource.provider), resource.urn)
            try:
                kind.delete(aws, resource.id, resource.outputs)
            except MaptError:
                raise
            except Exception as error:
                if is_aws_error(error):
                    raise _refused(error, resource.urn, aws, deleting=True) from error
                raise OperationError(
                    f"the sandbox could not delete {resource.urn}: {type(error).__name__}: {error}"
                ) from error
            _log.info("sandbox: deleted %s (%s)", resource.urn, resource.id)
        with self.lock:
            index = _index(self.old, resource)
            if index is not None:
                del self.old[index]
            self.steps.append(PlannedStep("delete", resource.type, resource.name))
            self.save()

    def finish(self, outputs: Mapping[str, ProgramOutput]) -> None:
        """After the program: delete what was replaced or is no longer declared; save.

        An interrupted run deletes nothing more: it saves what is, with the earlier outputs.
        """
        if self.cancelled:
            if self.apply:
                self.save()
            return
        for resource in reversed(list(self.old)):
            if resource.delete or resource.urn not in self.declared:
                if self.apply:
                    self.delete(resource)
                elif resource.urn not in self.declared:  # a replaced one is in its step
                    self.steps.append(PlannedStep("delete", resource.type, resource.name))
        self.outputs = {name: out.value for name, out in outputs.items()}
        _check_json(self.outputs, f"the outputs of stack {self.ref.stack_name}")
        self.secret_outputs = frozenset(name for name, out in outputs.items() if out.secret)
        if self.apply:
            self.save()

    # -- the checkpoint -----------------------------------------------------------------
    def resources(self) -> list[_Resource]:
        """What exists now, in dependency order: made this run, then what is left of before."""
        return [*self.made, *self.old]

    def save(self) -> None:
        with self.lock:
            data = _checkpoint(
                self.ref, self.resources(), self.outputs, self.secret_outputs, self.secrets
            )
            self.store.write(_checkpoint_key(self.ref), data)
            if self.before is not None and self.before.key not in (None, _checkpoint_key(self.ref)):
                self.store.delete([self.before.key])  # a compressed one, now rewritten plain
                self.before.key = _checkpoint_key(self.ref)


def _index(resources: list[_Resource], resource: _Resource) -> int | None:
    for index, candidate in enumerate(resources):
        if candidate is resource:
            return index
    return None


def _dependents(resources: list[_Resource], target: _Resource) -> list[_Resource]:
    """``target`` and every resource that depends on it, in dependency order."""
    doomed = [target]
    urns = {target.urn}
    start = _index(resources, target)
    for resource in resources[(start or 0) + 1 :]:
        needs = {*resource.dependencies, resource.parent, resource.provider.rsplit("::", 1)[0]}
        if not resource.delete and needs & urns:
            doomed.append(resource)
            urns.add(resource.urn)
    return doomed


def _same(old: Mapping[str, Any], new: Mapping[str, Any], ignored: tuple[str, ...]) -> bool:
    def canonical(values: Mapping[str, Any]) -> str:
        return json.dumps({k: v for k, v in values.items() if k not in ignored}, sort_keys=True)

    return canonical(old) == canonical(new)


def _check_json(values: Mapping[str, Any], what: str) -> None:
    try:
        json.dumps(values)
    except (TypeError, ValueError) as error:
        raise OperationError(f"{what} cannot be written to a checkpoint: {error}") from error


def _refused(error: Exception, urn: str, aws: _EndpointAws, *, deleting: bool = False) -> MaptError:
    """AWS's own error for a resource the endpoint refused, naming the resource."""
    verdict = aws_error(error, region=aws._region)
    doing = "deleting" if deleting else "creating"
    return type(verdict)(f"{doing} {urn.rsplit('::', 1)[-1]}: {verdict.message}", hint=verdict.hint)


class _SandboxMocks(RecordingMocks):
    """Mocks whose resources and invokes are the endpoint's (see ``_Run``)."""

    def __init__(self, run: _Run) -> None:
        super().__init__()
        self._sandbox_run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource = self.record(args)
        registration = resource.registration
        assert registration is not None  # the registration monitor always sets it
        return self._sandbox_run.register(args.typ, args.name, resource.inputs, registration)

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        run = self._sandbox_run
        call_args, _ = _revealed(dict(args.args))
        invoke = run.engine._invokes.get(args.token)
        if invoke is None:
            error = OperationError(
                f"the sandbox cannot answer invoke {args.token}: it has no answer for it"
            )
            run.failure = run.failure or error
            raise error
        aws = run.engine._aws(
            run._provider_region(engine_urn(args.provider)), f"invoke {args.token}"
        )
        try:
            answer = dict(invoke(aws, call_args))
        except MaptError as error:
            run.failure = run.failure or error
            raise
        except Exception as error:
            failure = (
                aws_error(error, region=aws._region)
                if is_aws_error(error)
                else OperationError(f"invoke {args.token} failed: {type(error).__name__}: {error}")
            )
            run.failure = run.failure or failure
            raise failure from error
        return answer, []


# -- the engine -----------------------------------------------------------------------------


class SandboxEngine(_InProcessEngine, _BackendStateFiles):
    """The ``Engine`` that makes a program's resources on an AWS-compatible endpoint.

    ``kinds`` maps each Pulumi type token the programs declare to its ``SandboxKind``,
    ``invokes`` each invoke token to its ``SandboxInvoke``; a type or token without one
    fails the ``up`` naming it. boto3 clients come from ``session`` (default: a new
    ``boto3.Session()``), so the endpoint is whatever botocore is configured with; the
    caller checks that it is a sandbox. ``secrets_provider`` is handled as the Pulumi
    engine handles it, passphrase only (``mapt.stacks._secrets``).
    """

    def __init__(
        self,
        kinds: Mapping[str, SandboxKind],
        invokes: Mapping[str, SandboxInvoke],
        *,
        secrets_provider: str | None = None,
        session: Any = None,
    ) -> None:
        super().__init__()
        self._kinds = dict(kinds)
        self._invokes = dict(invokes)
        self._secrets_provider = secrets_provider
        self._session = session
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()

    # -- the Engine operations ------------------------------------------------------------
    def exists(self, ref: StackRef) -> bool:
        backend = resolve_backend(ref.backend_url)
        state = _read_state(_store(backend), ref, self._secrets(backend), decrypt=False)
        return state is not None

    def outputs(self, ref: StackRef) -> dict[str, Any]:
        backend = resolve_backend(ref.backend_url)
        state = _read_state(_store(backend), ref, self._secrets(backend))
        if state is None:
            raise StackNotFoundError(f"stack {ref.stack_name} does not exist in its backend")
        return _plain(state.outputs, state.secret_outputs)

    def up(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
        refresh: bool = False,
        replace: Sequence[str] = (),
    ) -> dict[str, Any]:
        settings = check_config(config)
        backend = resolve_backend(ref.backend_url)
        prepare_backend(backend)
        store = _store(backend)
        with _stack_lock(backend, store, ref):
            secrets_for = self._secrets(backend)
            state = _read_state(store, ref, secrets_for)
            if refresh and state is not None:
                state = self._refreshed(state, settings)
            secrets = state.secrets if state and state.secrets else secrets_for(None)
            secrets.passphrase()
            _prepare_layout(store, backend)
            run = _Run(self, ref, store, state, secrets, settings, apply=True, replace=replace)
            if state is None:
                run.save()  # the stack exists from here on, as after `pulumi stack init`
            with cancellable(run.cancel):
                program_run = self._run_applying(run, program, config, operation="up")
                run.finish(program_run.outputs)
        return _plain(run.outputs, run.secret_outputs)

    def preview(
        self,
        ref: StackRef,
        program: Program,
        *,
        config: Mapping[str, str] | None = None,
    ) -> StackPreview:
        settings = check_config(config)
        backend = resolve_backend(ref.backend_url)
        store = _store(backend)
        if list_locks(backend, ref.project, ref.stack_name):
            raise StateLockedError(locked_message(ref.stack_name))
        secrets_for = self._secrets(backend)
        state = _read_state(store, ref, secrets_for)
        secrets = state.secrets if state and state.secrets else secrets_for(None)
        run = _Run(self, ref, store, state, secrets, settings, apply=False)
        program_run = self._run_applying(run, program, config, operation="preview")
        run.finish(program_run.outputs)
        steps = tuple(s for s in run.steps if not s.type.startswith(_PROVIDER_PREFIX))
        changes: dict[str, int] = {}
        for step in steps:
            changes[step.op] = changes.get(step.op, 0) + 1
        return StackPreview(stack_name=ref.stack_name, changes=changes, steps=steps)

    def destroy(self, ref: StackRef) -> bool:
        """Delete the stack's resources and its checkpoint; ``False`` when it has none.

        Whether it exists is read before the lock is taken: a stack that never existed
        (a mistyped ``--backed-url``) writes nothing, not even a lock in a new folder.
        """
        backend = resolve_backend(ref.backend_url)
        store = _store(backend)
        if not self.exists(ref):
            _log.info("stack %s does not exist; nothing to destroy", ref.stack_name)
            return False
        with _stack_lock(backend, store, ref):
            secrets_for = self._secrets(backend)
            state = _read_state(store, ref, secrets_for)
            if state is None:
                _log.info("stack %s was removed meanwhile; nothing to destroy", ref.stack_name)
                return False
            unknown = sorted(
                {r.type for r in state.resources if not r.is_provider and r.type not in self._kinds}
            )
            if unknown:
                raise OperationError(
                    f"the sandbox cannot destroy stack {ref.stack_name}: no sandbox kind for "
                    f"{', '.join(unknown)}"
                )
            run = _Run(self, ref, store, state, state.secrets or secrets_for(None), {}, apply=True)
            with cancellable(run.cancel):
                for resource in reversed(list(run.old)):
                    if run.cancelled:
                        return True  # cancellable raises Interrupted; the state keeps the rest
                    run.delete(resource)
                store.delete([state.key or _checkpoint_key(ref)])
        return True

    # -- plumbing -------------------------------------------------------------------------
    def _refreshed(self, state: _State, config: Mapping[str, str]) -> _State:
        """``state`` without the resources the endpoint no longer has (``RefreshableKind``).

        What depended on one keeps its entry: the program declares it with the new
        resource's id, which replaces it, as after ``pulumi refresh``.
        """
        regions = {
            r.provider_ref: str(r.inputs.get("region") or "") for r in state.resources
            if r.is_provider
        }  # fmt: skip
        default = config.get("aws:region") or region_from_environment()
        kept: list[_Resource] = []
        for resource in state.resources:
            kind = self._kinds.get(resource.type)
            if (
                not resource.is_provider
                and not resource.delete
                and isinstance(kind, RefreshableKind)
            ):
                aws = self._aws(regions.get(resource.provider) or default, resource.urn)
                if not kind.exists(aws, resource.id, resource.outputs):
                    _log.info(
                        "sandbox: refresh: %s (%s) no longer exists", resource.urn, resource.id
                    )
                    continue
            kept.append(resource)
        return replace(state, resources=kept)

    def _run_applying(
        self, run: _Run, program: Program, config: Mapping[str, str] | None, *, operation: str
    ) -> ProgramRun:
        """Run ``program`` with ``run`` answering its registrations; raise its first failure.

        On failure the state is saved as it is (what was made is in it) and the run's
        first failure (the endpoint's refusal) is raised, not what it caused later,
        unchained and outside the handler: it went through Pulumi's runtime on several
        threads, which chained it to itself.
        """
        failed: MaptError
        try:
            return self._run(
                run.ref,
                program,
                config,
                operation=operation,
                preview=False,
                mocks=_SandboxMocks(run),
            )
        except MaptError as error:
            failed = run.failure or error
        if run.apply:
            run.save()
        failed.__cause__ = failed.__context__ = None
        raise failed.with_traceback(None)

    def _secrets(self, backend: Backend) -> SecretsFor:
        def secrets_for(salt_state: str | None) -> _Secrets:
            return _Secrets(backend, self._secrets_provider, salt_state)

        return secrets_for

    def _aws(self, region: str | None, what: str) -> _EndpointAws:
        return _EndpointAws(self, region, what)

    def _client(self, service: str, region: str) -> Any:
        """One boto3 client per service and region (creating clients is not thread-safe)."""
        from botocore.config import Config

        with self._clients_lock:
            client = self._clients.get((service, region))
            if client is None:
                if self._session is None:
                    self._session = aws_session()
                client = self._session.client(
                    service, region_name=region, config=Config(retries={"mode": "standard"})
                )
                self._clients[(service, region)] = client
            return client


def _plain(outputs: Mapping[str, Any], secret: frozenset[str]) -> dict[str, Any]:
    """Outputs as plain values; secret strings are registered for log redaction."""
    for name in secret:
        value = outputs.get(name)
        if isinstance(value, str):
            register_secret(value)
    return dict(outputs)


def _prepare_layout(store: _Store, backend: Backend) -> None:
    """Mark the backend project-scoped (``meta.yaml``) as Pulumi does for a new one.

    A backend whose stacks are in the legacy layout (no ``meta.yaml``, checkpoints
    directly under ``stacks/``) is refused: a ``meta.yaml`` would hide them from Pulumi.
    A ``meta.yaml`` that is there is kept as it is, whether it can be read or not: one
    that cannot be read (no permission, S3 refusing) is not an absent one to overwrite.
    """
    if _META_KEY in store.named(_META_KEY):
        return
    if any(entry.project == "" for entry in store.checkpoints()):
        raise OperationError(
            f"the backend {backend.url} holds stacks in Pulumi's legacy layout; the sandbox "
            "writes the project-scoped one",
            hint="Use another --backed-url for the sandbox.",
        )
    store.write(_META_KEY, _META)


@contextmanager
def _stack_lock(backend: Backend, store: _Store, ref: StackRef) -> Iterator[None]:
    """Hold the stack's lock as Pulumi's DIY backend does: one file per operation.

    Any lock already there (a live run, or one a killed run left) refuses the
    operation with ``StateLockedError``, as Pulumi does; ``force_unlock`` removes them.
    """
    if list_locks(backend, ref.project, ref.stack_name):
        raise StateLockedError(locked_message(ref.stack_name))
    key = f"locks/{_ORGANIZATION}/{ref.project}/{ref.stack_name}/{uuid.uuid4()}.json"
    note = {
        "pid": os.getpid(),
        "username": current_user(),
        "hostname": socket.gethostname(),
        "timestamp": datetime.now(timezone.utc).isoformat(),
    }
    store.write(key, json.dumps(note).encode())
    try:
        yield
    finally:
        store.delete([key])


__all__ = ["SandboxEngine"]
