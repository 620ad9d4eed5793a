"""The workspace ``PulumiEngine`` runs Pulumi in: the SDK's, starting the CLI less often.

Each Pulumi CLI start costs about 0.2 s of CPU whatever the command (its Go package
initialisers). The SDK's ``LocalWorkspace`` selects a stack (``stack select``) before
every ``up``, ``preview`` and ``destroy`` only to learn whether it exists (every later
command names the stack with ``--stack``): ``StateReadingWorkspace`` reads that from the
backend's files instead, as ``host list`` reads them. The SDK reads outputs with two
``stack output`` runs (masked, to tell which are secret, then in plain text), after
every ``up`` too: one ``stack export --show-secrets`` (the SDK's ``export_stack``) gives
both, each secret value marked as Pulumi marks it in state. Nothing is written, nothing
decrypted by mapt; the exported text holds plain secrets, so it is never logged and no
error carries it. An export of a shape mapt does not know is an error, never "no
outputs".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi.automation import CommandResult, LocalWorkspace, OutputMap, OutputValue
from pulumi.automation.errors import StackNotFoundError

from mapt.core import OperationError, register_secret
from mapt.stacks._backend import Backend
from mapt.stacks._inventory import stack_exists

# How Pulumi marks a special value in state (resource.SigKey) and which one is a secret
# (resource.SecretSig); an exported secret keeps its value as JSON text in "plaintext".
_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"
_STACK_RESOURCE = "pulumi:pulumi:Stack"
# The deployment format `stack export` writes (apitype.DeploymentSchemaVersionCurrent).
_DEPLOYMENT_VERSION = 3


class StateReadingWorkspace(LocalWorkspace):
    """A ``LocalWorkspace`` of one project in ``backend`` (see the module's docstring)."""

    def __init__(self, *, backend: Backend, project: str, **options: Any) -> None:
        super().__init__(**options)
        self._backend = backend
        self._project = project

    def select_stack(self, stack_name: str) -> None:
        if not stack_exists(self._backend, self._project, stack_name):
            # What `pulumi stack select` fails with: the SDK's create_or_select then
            # runs `stack init`, and PulumiEngine maps it as it maps the CLI's.
            missing = f"error: no stack named '{stack_name}' found"
            raise StackNotFoundError(CommandResult(stdout="", stderr=missing, code=255))

    def stack_outputs(self, stack_name: str) -> OutputMap:
        # The SDK's export_stack runs `stack export --show-secrets --stack` (one start).
        # Its result holds plain secrets: it is never logged, kept or written.
        try:
            exported = self.export_stack(stack_name)
        except ValueError as error:  # the CLI printed something that is not JSON
            # Raised outside this block: the decode error keeps the printed text (plain
            # secrets) and would travel along as the new error's context.
            not_json = f"{type(error).__name__} at position {getattr(error, 'pos', '?')}"
        else:
            not_json = ""
        if not_json:
            raise OperationError(
                f"pulumi stack export of stack {stack_name} printed no JSON document ({not_json})"
            )
        outputs = exported_outputs(stack_name, exported.version, exported.deployment)
        if outputs is None:  # a value only `stack output` renders (an asset, a reference)
            return super().stack_outputs(stack_name)
        return {
            name: OutputValue(value=value, secret=secret)
            for name, (value, secret) in outputs.items()
        }


class _NotPlain(Exception):
    """An exported value is special in another way than being secret."""


def exported_outputs(
    stack_name: str, version: Any, deployment: Any
) -> dict[str, tuple[Any, bool]] | None:
    """Each stack output of a ``stack export --show-secrets`` document: (value, secret).

    ``secret`` is whether the output itself is secret, as the SDK tells it from a masked
    ``stack output`` ("[secret]" for the whole value only); every string inside a
    secret value, nested in a plain output too, is registered for log redaction. None
    when a value is special in another way (an asset, an archive, a resource
    reference): ``stack output`` renders those, so the caller asks it.

    Only a deployment of the version mapt reads (3) without any resource (a stack
    created, never updated) has no outputs; any other shape (another version, no
    deployment, resources without the stack resource) raises ``OperationError``:
    outputs that cannot be found are unknown, never empty (a runner id taken for
    absent would leave a runner registered).
    """

    def unexpected(what: str) -> OperationError:
        return OperationError(
            f"cannot read the outputs of stack {stack_name}: its exported state {what}"
        )

    if version != _DEPLOYMENT_VERSION:
        found = "no version" if version is None else f"version {version!r}"
        raise unexpected(f"has {found}, not {_DEPLOYMENT_VERSION}")
    if not isinstance(deployment, Mapping):
        raise unexpected("has no deployment")
    resources = deployment.get("resources")
    if resources is None or resources == []:
        return {}
    if not isinstance(resources, list) or not all(isinstance(r, Mapping) for r in resources):
        raise unexpected("has resources that are not a list of objects")
    stacks = [r for r in resources if r.get("type") == _STACK_RESOURCE]
    if len(stacks) != 1:
        raise unexpected(f"has {len(stacks)} {_STACK_RESOURCE} resources, not 1")
    outputs = stacks[0].get("outputs", {})  # none written when there are none
    if not isinstance(outputs, Mapping):
        raise unexpected(f"has {_STACK_RESOURCE} outputs that are not an object")
    try:
        return {name: (_plain_value(value), _is_secret(value)) for name, value in outputs.items()}
    except _NotPlain:
        return None


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIGNATURE_KEY) == _SECRET_SIGNATURE


def _plain_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain_value(item) for item in value]
    if not isinstance(value, dict):
        return value
    if _is_secret(value) and isinstance(value.get("plaintext"), str):
        plain = _plain_value(json.loads(value["plaintext"]))
        _register_strings(plain)
        return plain
    if _SIGNATURE_KEY in value:
        raise _NotPlain
    return {key: _plain_value(item) for key, item in value.items()}


def _register_strings(value: Any) -> None:
    """Register every string in a secret's value for log redaction."""
    if isinstance(value, str):
        register_secret(value)
    elif isinstance(value, list):
        for item in value:
            _register_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            _register_strings(item)
