"""Stacks: the only door to Pulumi.

It owns everything about Pulumi state and runs: stack naming, state backends
(``file://``, ``s3://``), secrets providers, locks, mapping Automation API errors to
``MaptError``, progress events, and the in-process engines (dry run, in memory,
sandbox). It imports ``pulumi`` and ``mapt.core``, never a higher layer; the programs
it runs are handed to it as plain callables. Importing this package does not import
Pulumi: the in-process engines and mocks, the only parts that import it at module
level, load on first use, so readers of state (``mapt aws host list``, ``sweep``)
never pay for it. See ``specs/concepts/stacks.md``.
"""

from typing import TYPE_CHECKING, Any

from mapt.stacks._backend import Backend, default_backend_dir, parse_backend_url, resolve_backend
from mapt.stacks._cli import MIN_PULUMI_VERSION, find_pulumi, install_pulumi, pulumi_command
from mapt.stacks._engine import (
    FORBIDDEN_CONFIG_KEYS,
    Engine,
    PlannedStep,
    Program,
    StackPreview,
    StackRef,
)
from mapt.stacks._errors import StackNotFoundError, map_command_error
from mapt.stacks._inventory import StackSummary, list_stacks, purge_project_state
from mapt.stacks._progress import Progress
from mapt.stacks._project_lock import LockHolder, break_project_lock, current_user, project_lock
from mapt.stacks._pulumi import PulumiEngine
from mapt.stacks._sandbox_kinds import (
    AppliedResource,
    RefreshableKind,
    SandboxAws,
    SandboxInvoke,
    SandboxKind,
)
from mapt.stacks._secrets import (
    PASSPHRASE_FILE_NAME,
    SecretsSetup,
    secrets_setup,
    validate_secrets_provider,
)

if TYPE_CHECKING:
    from mapt.stacks._dryrun import (
        Invocation,
        ProgramOutput,
        ProgramRun,
        RecordingMocks,
        RegisteredResource,
        run_program,
    )
    from mapt.stacks._inprocess import DryRunEngine, InMemoryEngine, RecordedRun
    from mapt.stacks._sandbox import SandboxEngine

# Names whose modules import Pulumi, loaded when first asked for (PEP 562).
_IMPORTS_PULUMI = {
    "mapt.stacks._dryrun": (
        "Invocation",
        "ProgramOutput",
        "ProgramRun",
        "RecordingMocks",
        "RegisteredResource",
        "run_program",
    ),
    "mapt.stacks._inprocess": ("DryRunEngine", "InMemoryEngine", "RecordedRun"),
    "mapt.stacks._sandbox": ("SandboxEngine",),
}


def __getattr__(name: str) -> Any:
    import importlib

    for module, names in _IMPORTS_PULUMI.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORBIDDEN_CONFIG_KEYS",
    "MIN_PULUMI_VERSION",
    "PASSPHRASE_FILE_NAME",
    "AppliedResource",
    "Backend",
    "DryRunEngine",
    "Engine",
    "InMemoryEngine",
    "Invocation",
    "LockHolder",
    "PlannedStep",
    "Program",
    "ProgramOutput",
    "ProgramRun",
    "Progress",
    "PulumiEngine",
    "RecordedRun",
    "RecordingMocks",
    "RefreshableKind",
    "RegisteredResource",
    "SandboxAws",
    "SandboxEngine",
    "SandboxInvoke",
    "SandboxKind",
    "SecretsSetup",
    "StackNotFoundError",
    "StackPreview",
    "StackRef",
    "StackSummary",
    "break_project_lock",
    "current_user",
    "default_backend_dir",
    "find_pulumi",
    "install_pulumi",
    "list_stacks",
    "map_command_error",
    "parse_backend_url",
    "project_lock",
    "pulumi_command",
    "purge_project_state",
    "resolve_backend",
    "run_program",
    "secrets_setup",
    "validate_secrets_provider",
]
