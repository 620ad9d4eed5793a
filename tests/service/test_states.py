"""The host state machine: the one table, and what each request may do from each state."""

from __future__ import annotations

import pytest

from mapt.core import StateLockedError
from mapt.service._errors import ConflictError, NotFoundError, http_status
from mapt.service._states import (
    BUSY,
    REQUESTS,
    TRANSITIONS,
    HostRequest,
    HostState,
    admit,
    transition,
)

S = HostState
# The list, written out here once more on purpose: the table must say exactly this.
EXPECTED = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.DELETED),
    (S.RUNNING, S.UPDATING),
    (S.UPDATING, S.RUNNING),
    (S.UPDATING, S.ERROR),
    (S.RUNNING, S.ERROR),
    (S.ERROR, S.RUNNING),
    (S.ERROR, S.ERROR),
    (S.PENDING, S.DELETING),
    (S.RUNNING, S.DELETING),
    (S.UPDATING, S.DELETING),
    (S.ERROR, S.DELETING),
    (S.DELETING, S.DELETED),
    (S.DELETING, S.ERROR),
}


def test_the_table_is_the_documented_machine() -> None:
    assert set(TRANSITIONS) == EXPECTED
    # Deleted is the end: nothing leaves it (a new create makes a new record).
    assert not [move for move in TRANSITIONS if move[0] is S.DELETED]


@pytest.mark.parametrize("current", list(HostState))
@pytest.mark.parametrize("wanted", list(HostState))
def test_transition_follows_the_table(current: HostState, wanted: HostState) -> None:
    if (current, wanted) in TRANSITIONS:
        assert transition("h", current, wanted) is wanted
    else:
        with pytest.raises(ConflictError) as raised:
            transition("h", current, wanted)
        assert http_status(raised.value) == 409


@pytest.mark.parametrize("current", [None, *HostState])
@pytest.mark.parametrize("request_", list(HostRequest))
def test_requests_answer_423_while_busy_409_when_impossible(
    current: HostState | None, request_: HostRequest
) -> None:
    allowed, wanted = REQUESTS[request_]
    if current in allowed:
        assert admit("h", current, request_) is wanted
        assert current in (None, S.DELETED) or (current, wanted) in TRANSITIONS
        return
    with pytest.raises((StateLockedError, ConflictError, NotFoundError)) as raised:
        admit("h", current, request_)
    if current in BUSY:
        assert isinstance(raised.value, StateLockedError)
        assert http_status(raised.value) == 423
        assert raised.value.exit_code == 3
    elif current is None:
        assert isinstance(raised.value, NotFoundError)
        assert http_status(raised.value) == 404
    else:
        assert http_status(raised.value) == 409
