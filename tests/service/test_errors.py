"""Each CLI exit code answers one HTTP status (several codes may share one)."""

from __future__ import annotations

import pytest

from mapt.core import (
    InputError,
    Interrupted,
    MaptError,
    NoCapacityError,
    OperationError,
    PrerequisiteError,
    StateLockedError,
    Terminated,
)
from mapt.service import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    error_body,
    http_status,
)


@pytest.mark.parametrize(
    ("error", "status", "exit_code"),
    [
        (InputError("cpus '-1' must be a positive number"), 422, 2),
        (NotFoundError("no host is named 'x'"), 404, 2),
        (ConflictError("host 'x' is DELETED"), 409, 2),
        (PayloadTooLargeError("too big"), 413, 2),
        (StateLockedError("stack host-x is locked"), 423, 3),
        (NoCapacityError("no zone"), 503, 4),
        (PrerequisiteError("no Pulumi CLI"), 503, 5),
        (AuthenticationError("no token"), 401, 5),
        (ForbiddenError("read-only"), 403, 5),
        (Interrupted(2), 503, 130),
        (Terminated(15), 503, 143),
        (OperationError("AWS said no"), 502, 1),
        (MaptError("something"), 500, 1),
    ],
)
def test_status_and_body_of_each_error(error: MaptError, status: int, exit_code: int) -> None:
    assert http_status(error) == status
    body = error_body(error)["error"]
    assert body == {"type": type(error).__name__, "message": str(error), "exit_code": exit_code}
