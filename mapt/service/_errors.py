"""The service's own errors, and the one table from an error to its HTTP status.

Every failure the service explains is a ``MaptError``, so it carries the exit code the
CLI would end with; the HTTP status follows from the error's class (the most specific
row of ``HTTP_STATUS`` wins). The mapping goes one way, exit code to status: several
codes share a status (503), and the body always carries ``exit_code`` so a client can
end the way the local command would. ``specs/features/service.md`` shows the table.
"""

from __future__ import annotations

from typing import Any

from mapt.core import (
    ExitCode,
    InputError,
    Interrupted,
    MaptError,
    NoCapacityError,
    OperationError,
    PrerequisiteError,
    StateLockedError,
)


class NotFoundError(InputError):
    """No execution, host or token has the name or id asked for (HTTP 404)."""


class ConflictError(InputError):
    """The change asked is impossible from the current state (HTTP 409)."""


class AuthenticationError(PrerequisiteError):
    """No token, or one that is unknown, expired or revoked (HTTP 401).

    Exit 5, as missing or invalid AWS credentials are for the local command.
    """


class ForbiddenError(PrerequisiteError):
    """A valid token whose scope does not allow the call: read-only on a write (403)."""


class PayloadTooLargeError(InputError):
    """A request body over the service's limit (HTTP 413)."""


# (class, HTTP status), most specific first: the first row the error is an instance of.
HTTP_STATUS: tuple[tuple[type[MaptError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (InputError, 422),  # exit 2
    (StateLockedError, 423),  # exit 3
    (NoCapacityError, 503),  # exit 4: retry later
    (PrerequisiteError, 503),  # exit 5: the server lacks what it needs (Pulumi CLI, AWS)
    (Interrupted, 503),  # exit 130/143: the server is stopping
    (OperationError, 502),  # exit 1: AWS or Pulumi failed behind the service
    (MaptError, 500),
)


def http_status(error: MaptError) -> int:
    """The HTTP status that answers ``error``."""
    return next(status for kind, status in HTTP_STATUS if isinstance(error, kind))


def error_body(error: MaptError, *, field: str | None = None) -> dict[str, Any]:
    """The JSON body of an error answer: the same ``type``/``message``/``exit_code``
    an execution's ``error`` has, and the field a bad input is about."""
    body: dict[str, Any] = {
        "type": type(error).__name__,
        "message": str(error),
        "exit_code": int(error.exit_code),
    }
    if field is not None:
        body["field"] = field
    return {"error": body}


def bug_body() -> dict[str, Any]:
    """The body of a 500 for an error no layer explained (its traceback is logged)."""
    return {
        "error": {
            "type": "InternalError",
            "message": "the server failed unexpectedly; its log has the details",
            "exit_code": int(ExitCode.FAILED),
        }
    }
