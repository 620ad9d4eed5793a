"""What intervals cost within a window: one document for the service and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from mapt.costs._list_prices import list_priced
from mapt.costs._pricing import Cost, Placement, clipped


@dataclass(frozen=True)
class Interval:
    """A stretch of time a host ran at one placement (``id``: its row in the service's
    records; None for a host made by the CLI, priced from its state)."""

    id: int | None
    host: str
    pool: str | None
    placement: Placement
    airgap: bool
    # A spot host behind its network load balancer (one with a name of its own has none).
    load_balancer: bool
    started_at: datetime
    ended_at: datetime | None
    start_reason: str
    end_reason: str | None


@dataclass(frozen=True)
class CostReport:
    """What some intervals cost within a window, and what they held at list prices."""

    cost: Cost
    # (spot, airgap, load balancer) -> hours run in that shape: what the list-priced
    # resources follow.
    hours_by_shape: Mapping[tuple[bool, bool, bool], Decimal]
    intervals: tuple[tuple[Interval, datetime, datetime, Cost], ...] = ()

    def as_spot_api(self) -> dict[str, Any]:
        """Exactly the spot-api's document: ``costs``, ``running``, ``savings``."""
        return self.cost.as_spot_api()

    def as_detail(self) -> dict[str, Any]:
        """The spot-api's document, plus each interval and the list-priced resources."""
        return {
            **self.as_spot_api(),
            "intervals": [
                {
                    "host": interval.host,
                    "pool": interval.pool,
                    "region": interval.placement.region,
                    "availability_zone": interval.placement.availability_zone,
                    "instance_types": list(interval.placement.instance_types),
                    "capacity": "spot" if interval.placement.spot else "on-demand",
                    "start": _iso(start),
                    "end": _iso(end),
                    "start_reason": interval.start_reason,
                    "end_reason": interval.end_reason,
                    **cost.as_spot_api(),
                }
                for interval, start, end, cost in self.intervals
            ],
            "list_priced": list_priced(dict(self.hours_by_shape)),
        }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def cost_report(
    intervals: Iterable[Interval],
    start: datetime | None,
    end: datetime,
    price: Callable[[Interval, datetime, datetime], Cost],
) -> CostReport:
    """What ``intervals`` cost within [start, end), each part priced by ``price``."""
    total = Cost()
    shapes: dict[tuple[bool, bool, bool], Decimal] = {}
    priced = []
    for interval in intervals:
        part = clipped(interval.started_at, interval.ended_at, start, end)
        if part is None:
            continue
        cost = price(interval, *part)
        total += cost
        shape = (interval.placement.spot, interval.airgap, interval.load_balancer)
        shapes[shape] = shapes.get(shape, Decimal(0)) + cost.hours
        priced.append((interval, part[0], part[1], cost))
    return CostReport(total, shapes, tuple(priced))
