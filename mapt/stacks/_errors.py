"""Turning Automation API failures into ``MaptError``s that say what to do.

``pulumi.automation`` raises ``CommandError`` subclasses whose text is the whole CLI
transcript (often hundreds of lines, possibly with secret values). A CI user needs
one line: which stack, what failed (the engine's last error diagnostics), and the
exit code that tells a locked state (3) from a failed deployment (1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mapt.core import OperationError, PrerequisiteError, StateLockedError, redact
from mapt.stacks._secrets import another_passphrase_error

if TYPE_CHECKING:
    from pulumi.automation.errors import CommandError

# At most this many diagnostics, and characters of them, go into the one-line message.
_MAX_DIAGNOSTICS = 3
_MAX_DETAIL = 600

_LOCK_OWNER = re.compile(r"created by (?P<who>\S+) \(pid (?P<pid>\d+)\) at (?P<when>\S+)")
_INLINE_ERROR = re.compile(r"python inline source runtime error: (?P<message>[^\n]*)")
_ERROR_LINE = re.compile(r"^\s*error: (?P<message>.*\S)\s*$", re.MULTILINE)
# Pulumi's passphrase secrets manager (pkg/secrets/passphrase): ErrIncorrectPassphrase
# ("incorrect passphrase"), wrapped as 'constructing secrets manager of type
# "passphrase": incorrect passphrase' or 'failed to decrypt: incorrect passphrase, ...'.
_INCORRECT_PASSPHRASE = re.compile(r"\bincorrect passphrase\b", re.IGNORECASE)


class StackNotFoundError(OperationError):
    """The stack asked for does not exist in the backend."""


def stack_not_found(stack_name: str, backend_url: str) -> StackNotFoundError:
    """The error for a stack the backend does not hold, found by mapt or by the CLI."""
    return StackNotFoundError(f"stack {stack_name} does not exist in {backend_url}")


def locked_message(stack_name: str) -> str:
    """The one sentence every "stack is locked" failure starts with."""
    return (
        f"stack {stack_name} is locked by another run; retry, or --force-destroy if that "
        "run is dead"
    )


def map_command_error(
    error: CommandError,
    *,
    stack_name: str,
    backend_url: str,
    operation: str,
    diagnostics: Sequence[str] = (),
) -> OperationError | StateLockedError | PrerequisiteError:
    """The ``MaptError`` for a failed Pulumi CLI command.

    ``diagnostics`` are the error diagnostics the engine streamed during the
    operation (newest last); without them the ``error:`` lines of the CLI's output
    are used. Every text taken from Pulumi passes through ``redact``. A passphrase
    that cannot decrypt the stack is a missing prerequisite (exit 5), not a failure.
    """
    from pulumi.automation import errors

    stdout, stderr = _streams(error)
    if isinstance(error, errors.ConcurrentUpdateError):
        owner = _LOCK_OWNER.search(stderr)
        message = locked_message(stack_name)
        if owner:
            message += f" (lock taken by {owner['who']}, pid {owner['pid']}, at {owner['when']})"
        return StateLockedError(redact(message))
    if isinstance(error, errors.StackNotFoundError):
        return stack_not_found(stack_name, backend_url)
    if any(_INCORRECT_PASSPHRASE.search(text) for text in (stderr, stdout, *diagnostics)):
        return another_passphrase_error(backend_url)
    if isinstance(error, errors.InlineSourceRuntimeError):
        found = _INLINE_ERROR.search(stdout) or _INLINE_ERROR.search(stderr)
        detail = found["message"].strip() if found else _detail(diagnostics, stdout, stderr)
        return OperationError(redact(f"the program of stack {stack_name} failed: {detail}"))
    detail = _detail(diagnostics, stdout, stderr)
    return OperationError(redact(f"pulumi {operation} of stack {stack_name} failed: {detail}"))


def _streams(error: CommandError) -> tuple[str, str]:
    """The failed command's stdout and stderr (``CommandError`` keeps only their text)."""
    text = str(error)
    stdout_at = text.find("\n stdout: ")
    stderr_at = text.find("\n stderr: ")
    if stdout_at < 0 or stderr_at < 0:
        return "", text
    return text[stdout_at + len("\n stdout: ") : stderr_at], text[stderr_at + len("\n stderr: ") :]


def _detail(diagnostics: Sequence[str], stdout: str, stderr: str) -> str:
    lines = [line for line in (_one_line(d) for d in diagnostics) if line]
    if not lines:
        found = [m["message"] for m in _ERROR_LINE.finditer(stderr)]
        found += [m["message"] for m in _ERROR_LINE.finditer(stdout)]
        # "update failed" only says that something else failed; prefer the cause.
        lines = [line for line in found if line != "update failed"] or found
    if not lines:
        tail = [line.strip() for line in (stderr or stdout).splitlines() if line.strip()]
        lines = tail[-1:] or ["no diagnostics (run with --debug for the engine log)"]
    unique = list(dict.fromkeys(lines))[-_MAX_DIAGNOSTICS:]
    detail = "; ".join(unique)
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 3] + "..."
    return detail


def _one_line(text: str) -> str:
    return " ".join(text.split())
