"""The error hierarchy: every failure mapt can explain is a ``MaptError``.

Each class carries the process exit code the CLI uses for it, so a CI step can tell a
typo (2) from a locked state (3) from a market with no capacity (4) without parsing
text. The table is documented in README.md; keep the two in step.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Process exit codes of the ``mapt`` command."""

    OK = 0
    FAILED = 1
    USAGE = 2
    LOCKED = 3
    NO_CAPACITY = 4
    PREREQUISITE = 5
    INTERRUPTED = 130
    TERMINATED = 143


class MaptError(Exception):
    """A failure mapt understands: one sentence saying what failed, and what to do.

    ``message`` says what went wrong and names the value or resource involved;
    ``hint``, when given, says what the user can do about it.
    """

    exit_code: ClassVar[ExitCode] = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def add_context(self, context: str) -> None:
        """Put ``context`` (where the failure happened) in front of this error's message.

        The error is changed in place rather than copied, because subclasses build
        their message from fields of their own (``Interrupted`` from a signal number,
        ``SpotLaunchError`` from AWS's reason code) and take no message: a copy made
        as ``type(error)(message, hint=...)`` cannot be built, while this one keeps
        its class, its fields and its exit code for whoever handles it next.
        """
        self.message = f"{context}: {self.message}"
        self.args = (self.message,)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message.rstrip('.')}. {self.hint}"
        return self.message


class OperationError(MaptError):
    """An operation against AWS or Pulumi was attempted and failed."""

    exit_code = ExitCode.FAILED


class InputError(MaptError):
    """Bad usage or input, detected before anything was created or changed.

    ``field``, when given, is the input the error is about, as its caller names it
    (a request type's field, a flag): a message may word it in prose (``spot increase
    rate``), and the CLI must not guess from the words which flag or variable it was.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class StateLockedError(MaptError):
    """The stack's state is locked by another run (alive, or dead and stale)."""

    exit_code = ExitCode.LOCKED


class NoCapacityError(MaptError):
    """No region or availability zone can run the requested machine right now."""

    exit_code = ExitCode.NO_CAPACITY


class PrerequisiteError(MaptError):
    """Something this machine needs is missing (Pulumi CLI, AWS credentials, ...)."""

    exit_code = ExitCode.PREREQUISITE


def filesystem_error(error: OSError) -> OperationError:
    """A file-system failure (disk full, read-only folder, no permission) as one line."""
    import errno

    name = errno.errorcode.get(error.errno or 0, "")
    reason = error.strerror or str(error)
    where = f" on {error.filename}" if error.filename else ""
    if error.filename2:
        where += f" -> {error.filename2}"
    return OperationError(
        f"a file operation failed{where}: {reason}" + (f" ({name})" if name else ""),
        hint="Check the free space, the permissions and that the folder is writable.",
    )
