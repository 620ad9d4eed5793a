"""The values ``mapt serve``'s HTTP API and ``mapt.client`` both speak: statuses and states.

An execution's ``status`` and a managed host's ``state`` travel as strings in the API's
JSON; the service (``mapt.service``) decides them and the client (``mapt.client``)
reads them back. One definition here keeps the two from drifting apart. It sits apart
from both because each must be importable without the other: the service loads
SQLAlchemy and FastAPI, the client only httpx, and ``mapt --help`` neither. It is not
``mapt.core``, which every layer (stacks, targets, allocation) builds on and which has
no notion of a server. Standard library only.
"""

from __future__ import annotations

from enum import Enum


class ExecutionStatus(str, Enum):
    """Where an execution is: pending -> running -> succeeded | failed | cancelled."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """It has ended and will not change again."""
        return self in _FINISHED


_FINISHED = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)


class HostState(str, Enum):
    """A managed host's state (the service's state machine: ``mapt.service._states``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    UPDATING = "UPDATING"
    ERROR = "ERROR"
    DELETING = "DELETING"
    DELETED = "DELETED"

    @property
    def busy(self) -> bool:
        """An execution is at work on the host: changes are refused (423) until it ends."""
        return self in BUSY_STATES


BUSY_STATES: frozenset[HostState] = frozenset(
    {HostState.PENDING, HostState.UPDATING, HostState.DELETING}
)
