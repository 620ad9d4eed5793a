"""Stacks: the only door to Pulumi.

It owns everything about Pulumi state and runs: stack naming, state backends
(``file://``, ``s3://``), secrets providers, locks, mapping Automation API errors to
``MaptError``, progress events, and the in-process dry-run engine. It imports
``pulumi`` and ``mapt.core``, never a higher layer; the programs it runs are handed to
it as plain callables. Importing this package imports Pulumi: only commands that need
it may do so.
"""

from mapt.stacks._dryrun import (
    Invocation,
    ProgramOutput,
    ProgramRun,
    RecordingMocks,
    RegisteredResource,
    run_program,
)

__all__ = [
    "Invocation",
    "ProgramOutput",
    "ProgramRun",
    "RecordingMocks",
    "RegisteredResource",
    "run_program",
]
