"""The workspace ``PulumiEngine`` runs Pulumi in: the SDK's, starting the CLI less often.

Each Pulumi CLI start costs about 0.2 s of CPU whatever the command (its Go package
initialisers). The SDK's ``LocalWorkspace`` selects a stack (``stack select``) before
every ``up``, ``preview`` and ``destroy`` only to learn whether it exists (every later
command names the stack with ``--stack``): ``StateReadingWorkspace`` reads that from the
backend's files instead, as ``host list`` reads them. The SDK reads outputs with two
``stack output`` runs (masked, to tell which are secret, then in plain text), after
every ``up`` too: one ``stack export --show-secrets`` gives both, each secret value
marked as Pulumi marks it in state. Nothing is written, nothing decrypted by mapt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi.automation import CommandResult, LocalWorkspace, OutputMap, OutputValue
from pulumi.automation.errors import StackNotFoundError

from mapt.stacks._backend import Backend
from mapt.stacks._inventory import stack_exists

# How Pulumi marks a special value in state (resource.SigKey) and which one is a secret
# (resource.SecretSig); an exported secret keeps its value as JSON text in "plaintext".
_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"
_STACK_RESOURCE = "pulumi:pulumi:Stack"


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
        exported = self._run_pulumi_cmd_sync(
            ["stack", "export", "--show-secrets", "--stack", stack_name]
        )
        outputs = exported_outputs(json.loads(exported.stdout))
        if outputs is None:  # a value only `stack output` renders (an asset, a reference)
            return super().stack_outputs(stack_name)
        return {
            name: OutputValue(value=value, secret=secret)
            for name, (value, secret) in outputs.items()
        }


class _NotPlain(Exception):
    """An exported value is special in another way than being secret."""


def exported_outputs(exported: Mapping[str, Any]) -> dict[str, tuple[Any, bool]] | None:
    """Each stack output of a ``stack export --show-secrets`` document: (value, secret).

    ``secret`` is whether the output itself is secret, as the SDK tells it from a masked
    ``stack output`` ("[secret]" for the whole value only). None when a value is special
    in another way (an asset, an archive, a resource reference): ``stack output``
    renders those, so the caller asks it.
    """
    resources = (exported.get("deployment") or {}).get("resources") or []
    stack: Mapping[str, Any] = next((r for r in resources if r.get("type") == _STACK_RESOURCE), {})
    try:
        return {
            name: (_plain_value(value), _is_secret(value))
            for name, value in (stack.get("outputs") or {}).items()
        }
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
        return _plain_value(json.loads(value["plaintext"]))
    if _SIGNATURE_KEY in value:
        raise _NotPlain
    return {key: _plain_value(item) for key, item in value.items()}
