"""The state machine of a managed host: one table that the code and the tests share.

```
PENDING  -> RUNNING   deployed and ready
PENDING  -> DELETED   its create was cancelled before it started (nothing was made;
                      the record keeps why)
RUNNING  -> UPDATING  resize, tags, timeout or a new address asked
UPDATING -> RUNNING   updated, or its update was cancelled before it started
UPDATING -> ERROR     the update failed
RUNNING  -> ERROR     a failure was detected
ERROR    -> RUNNING   recovery succeeded
ERROR    -> ERROR     recovery failed
any      -> DELETING  delete asked; from PENDING, the create failed or was cut short
                      (what it made is destroyed, then DELETED keeping the create's error)
DELETING -> DELETED   destroyed
DELETING -> ERROR     the destroy failed, or its delete was cancelled before it started
                      (the record keeps the error; delete again)
```

A host's state changes only through ``transition``, which refuses a move the table
lacks. What a caller may ask is ``admit``: a host never created is ``NotFoundError``
(404); while the host is PENDING, UPDATING or
DELETING its execution is at work, so any change is ``StateLockedError`` (HTTP 423,
exit 3: retry later); a change that no state could lead to from here is
``ConflictError`` (HTTP 409). An execution that ends without its operation having
settled the host (cancelled before it started, or failed once its workers were lost)
leaves it to ``Hosts.settle_abandoned``, so no host stays busy for ever.
"""

from __future__ import annotations

from enum import Enum

from mapt._api import BUSY_STATES
from mapt._api import HostState as HostState  # the API's, shared with the client
from mapt.core import StateLockedError
from mapt.service._errors import ConflictError, NotFoundError

P, R, U, E, D, X = (
    HostState.PENDING,
    HostState.RUNNING,
    HostState.UPDATING,
    HostState.ERROR,
    HostState.DELETING,
    HostState.DELETED,
)

# Every move a host's record can make: (from, to).
TRANSITIONS: frozenset[tuple[HostState, HostState]] = frozenset(
    {
        (P, R),
        (P, X),
        (R, U),
        (U, R),
        (U, E),
        (R, E),
        (E, R),
        (E, E),
        (D, X),
        (D, E),
        *((state, D) for state in (P, R, U, E)),
    }
)

# States in which an execution is at work on the host: changes wait (423).
BUSY = BUSY_STATES


class HostRequest(str, Enum):
    """What a caller can ask of a host, and the state it moves the host into."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REFRESH_IP = "refresh-ip"


# request -> (states it may be asked from; None is "no record"), the state it leads to.
REQUESTS: dict[HostRequest, tuple[frozenset[HostState | None], HostState]] = {
    HostRequest.CREATE: (frozenset({None, X}), P),
    HostRequest.UPDATE: (frozenset({R}), U),
    HostRequest.DELETE: (frozenset({R, E}), D),
    # A new address is an update of the host stack (its Elastic IP replaced).
    HostRequest.REFRESH_IP: (frozenset({R}), U),
}


def transition(host: str, current: HostState, wanted: HostState) -> HostState:
    """``wanted``, when the table has ``current -> wanted``; else ``ConflictError``."""
    if (current, wanted) not in TRANSITIONS:
        raise ConflictError(f"host {host!r} cannot go from {current.value} to {wanted.value}")
    return wanted


def admit(host: str, current: HostState | None, request: HostRequest) -> HostState:
    """The state ``request`` moves ``host`` into from ``current`` (None: no record).

    ``StateLockedError`` while the host is busy; ``ConflictError`` when the request
    cannot apply to its state.
    """
    allowed, wanted = REQUESTS[request]
    if current in allowed:
        if current is None or current is X:
            return wanted  # a new record
        return transition(host, current, wanted)
    if current in BUSY:
        raise StateLockedError(
            f"host {host!r} is {current.value}: its running execution must end first",
            hint="Retry when GET /v1/hosts/NAME shows RUNNING or ERROR.",
        )
    if current is None:
        raise NotFoundError(f"no host is named {host!r}")
    raise ConflictError(f"host {host!r} is {current.value}: it cannot be asked to {request.value}")
