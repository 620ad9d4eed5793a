"""The AWS events the service heard about its hosts: the typed record of one
``host_events`` row.

EventBridge delivers each event at least once; its ``id`` is the row's key, so an event
is recorded (and acted on) once however often it arrives. The intake
(``mapt.service._event_intake``) writes the rows; ``mapt.service._interruptions`` acts
on each new one in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

from mapt.service._schema import host_events


class HostEventKind(str, Enum):
    """What AWS said about a host's instance (one per EventBridge detail-type).

    A ``str`` enum (``enum.StrEnum`` needs Python 3.11; mapt supports 3.10): each
    member equals its value.
    """

    INTERRUPTION_WARNING = "interruption-warning"  # EC2 Spot Instance Interruption Warning
    REBALANCE_RECOMMENDATION = "rebalance-recommendation"  # EC2 Instance Rebalance Recommendation
    STATE_CHANGE = "state-change"  # EC2 Instance State-change Notification


@dataclass(frozen=True)
class HostEvent:
    """One event about a managed host's instance, as recorded.

    ``id``: EventBridge's event id; ``pool``: the pool the host served (None: a host of
    its own); ``zone``: the instance's availability zone when known; ``action``: the
    interruption's instance-action (``terminate``, ``stop``, ``hibernate``);
    ``instance_state``: a state-change's new state; ``event_time``: when AWS says it
    happened; ``received_at``: when the service recorded it.
    """

    id: str
    kind: HostEventKind
    host: str
    pool: str | None
    region: str
    zone: str | None
    instance_id: str
    action: str | None
    instance_state: str | None
    event_time: datetime
    received_at: datetime

    def to_row(self) -> dict[str, Any]:
        """The ``host_events`` row of this event."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "host": self.host,
            "pool": self.pool,
            "region": self.region,
            "zone": self.zone,
            "instance_id": self.instance_id,
            "action": self.action,
            "instance_state": self.instance_state,
            "event_time": self.event_time,
            "received_at": self.received_at,
        }

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> HostEvent:
        """The event of a ``host_events`` row."""
        return cls(
            id=row["id"],
            kind=HostEventKind(row["kind"]),
            host=row["host"],
            pool=row["pool"],
            region=row["region"],
            zone=row["zone"],
            instance_id=row["instance_id"],
            action=row["action"],
            instance_state=row["instance_state"],
            event_time=row["event_time"],
            received_at=row["received_at"],
        )


def record_host_event(connection: sa.Connection, event: HostEvent) -> bool:
    """Record ``event`` in the caller's transaction: True when it is new, False when its
    id is already recorded (a duplicate delivery, which changes nothing)."""
    exists = connection.execute(
        sa.select(host_events.c.id).where(host_events.c.id == event.id)
    ).first()
    if exists is not None:
        return False
    connection.execute(host_events.insert().values(**event.to_row()))
    return True


def host_events_of(connection: sa.Connection, host: str) -> list[HostEvent]:
    """The events recorded about ``host``, oldest first."""
    rows = connection.execute(
        sa.select(host_events)
        .where(host_events.c.host == host)
        .order_by(host_events.c.event_time, host_events.c.received_at)
    ).mappings()
    return [HostEvent.from_row(row) for row in rows]
