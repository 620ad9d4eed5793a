"""The server's error answers, back as the ``mapt.core`` errors the local command raises.

``mapt serve`` maps each ``MaptError`` onto an HTTP status one way
(``HTTP_STATUS`` in ``mapt/service/_errors.py``, shown in ``specs/features/service.md``)
and sends ``{"error": {"type", "message", "exit_code"}}``. ``server_error`` reads that
backwards, in this one place: the status picks the specific class (404, 409, 401...),
and the body's ``exit_code`` settles the statuses several classes share (503 is "no
capacity" or "a missing prerequisite" on the server). An answer without a mapt body
(a proxy's HTML page) is known by its status alone (407, 408 and 429 are a failed
operation, not bad input: the way to the server failed). So a caller ends with the exit
code and the message the local command would have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapt.core import (
    InputError,
    MaptError,
    NoCapacityError,
    OperationError,
    PrerequisiteError,
    StateLockedError,
)


class ServerErrorMixin:
    """What every error answered by a server carries besides its message."""

    status: int | None = None
    """The HTTP status of the answer (None: the error of a finished execution)."""
    server_type: str | None = None
    """The class name the server gave the error (e.g. ``NoMatchingInstanceTypesError``)."""


class NotFoundError(InputError):
    """No host or execution has the name or id asked for (HTTP 404)."""


class ConflictError(InputError):
    """The change asked is impossible from the host's state (HTTP 409)."""


class PayloadTooLargeError(InputError):
    """The request body is over the server's limit (HTTP 413)."""


class AuthenticationError(PrerequisiteError):
    """No token, or one the server does not know or no longer accepts (HTTP 401)."""


class ForbiddenError(PrerequisiteError):
    """The token may not do this: a read-only token on a write (HTTP 403)."""


# The service's status table, read backwards: the class a status stands for.
_BY_STATUS: dict[int, type[MaptError]] = {
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: InputError,
    423: StateLockedError,
    502: OperationError,
}
# Statuses a proxy or gateway answers about the way to the server, not about the
# request (proxy authentication, a timeout, a rate limit): the operation failed, exit 1,
# as with a server that cannot be reached; the same request may succeed later.
_NOT_ABOUT_THE_REQUEST = frozenset({407, 408, 429})
# The class an exit code stands for, when the status is shared (503) or unknown.
_BY_EXIT_CODE: dict[int, type[MaptError]] = {
    int(kind.exit_code): kind
    for kind in (OperationError, InputError, StateLockedError, NoCapacityError, PrerequisiteError)
}


def error_class(status: int | None, exit_code: int | None) -> type[MaptError]:
    """The error class of an answer with ``status`` and a body saying ``exit_code``.

    The status's class when the exit code agrees with it (or none was sent); else the
    exit code's class. A server stopping (exit 130/143) or failing unexpectedly is an
    ``OperationError`` here: the caller was not interrupted, the server was. Another
    4xx is bad input, but for 407, 408 and 429 (``_NOT_ABOUT_THE_REQUEST``).
    """
    by_status = _BY_STATUS.get(status) if status is not None else None
    if by_status is not None and (exit_code is None or by_status.exit_code == exit_code):
        return by_status
    if exit_code is not None and exit_code in _BY_EXIT_CODE:
        return _BY_EXIT_CODE[exit_code]
    if by_status is not None:
        return by_status
    if status is not None and 400 <= status < 500 and status not in _NOT_ABOUT_THE_REQUEST:
        return InputError
    return OperationError


def server_error(
    status: int | None,
    body: Mapping[str, Any] | None,
    *,
    fallback: str,
    hint: str | None = None,
) -> MaptError:
    """The ``MaptError`` for a server's error ``body`` (its ``error`` object) or, when
    the body is not mapt's, for ``status`` alone with ``fallback`` as the message."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        exit_code = error.get("exit_code")
        code = exit_code if isinstance(exit_code, int) else None
        message = str(error["message"])
        server_type = str(error.get("type")) if error.get("type") is not None else None
    else:
        code, message, server_type = None, fallback, None
    kind = error_class(status, code)
    made: MaptError = _with_answer(kind)(message, hint=hint)
    made.status = status  # type: ignore[attr-defined]
    made.server_type = server_type  # type: ignore[attr-defined]
    return made


_ANSWERED: dict[type[MaptError], type[Any]] = {}


def _with_answer(kind: type[MaptError]) -> type[Any]:
    """``kind`` with the answer's status and type attached (one subclass per class, so
    ``except NotFoundError`` and ``isinstance(e, InputError)`` still hold)."""
    if kind not in _ANSWERED:
        _ANSWERED[kind] = type(kind.__name__, (kind, ServerErrorMixin), {"__module__": __name__})
    return _ANSWERED[kind]
