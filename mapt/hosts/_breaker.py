"""The circuit breaker of spot launches: too many interruptions in a place stop spot there.

A place is a pool (None: hosts of no pool) in a region. When ``interruptions`` spot
instances of one place are interrupted (a warning or a rebalance recommendation; an
instance counts once, whatever AWS sent about it) within ``window``, the breaker of
that place opens at the last of them and stays open for ``cooldown``; an interruption
while it is open that again completes a full window keeps it open from then. While it
is open, new spot launches and replacements of that place go to another region or on
demand (the callers decide which); then it closes by itself. RunsOn's rule, 2
interruptions in 15 minutes stop spot for 30 minutes, is the default.

Pure: the interruptions and the time come in, the open breakers go out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_BREAKER_INTERRUPTIONS = 2
DEFAULT_BREAKER_WINDOW = timedelta(minutes=15)
DEFAULT_BREAKER_COOLDOWN = timedelta(minutes=30)


@dataclass(frozen=True)
class BreakerPolicy:
    """How many interruptions within ``window`` open a breaker, and for how long."""

    interruptions: int = DEFAULT_BREAKER_INTERRUPTIONS
    window: timedelta = DEFAULT_BREAKER_WINDOW
    cooldown: timedelta = DEFAULT_BREAKER_COOLDOWN

    def __post_init__(self) -> None:
        if self.interruptions < 1:
            raise ValueError(f"breaker interruptions {self.interruptions} must be at least 1")
        if self.window <= timedelta(0) or self.cooldown <= timedelta(0):
            raise ValueError("the breaker's window and cooldown must be longer than zero")


@dataclass(frozen=True)
class Interruption:
    """One spot instance of a place (``pool``, ``region``) interrupted at ``at``."""

    pool: str | None
    region: str
    instance: str
    at: datetime


@dataclass(frozen=True)
class OpenBreaker:
    """A place whose spot launches are stopped from ``opened_at`` until ``closes_at``."""

    pool: str | None
    region: str
    opened_at: datetime
    closes_at: datetime


Place = tuple[str | None, str]


def open_breakers(
    interruptions: Iterable[Interruption], policy: BreakerPolicy, now: datetime
) -> Mapping[Place, OpenBreaker]:
    """The breakers open at ``now``, by place (pool, region).

    A breaker opens at an interruption ``t`` when at least ``policy.interruptions``
    distinct instances of its place were interrupted in ``(t - window, t]``; it is open
    at ``now`` when such a ``t`` lies in ``(now - cooldown, now]``, until the latest
    such ``t`` plus the cooldown. Interruptions after ``now`` are not seen yet.
    """
    first_seen: dict[Place, dict[str, datetime]] = {}
    for interruption in interruptions:
        if interruption.at > now:
            continue
        seen = first_seen.setdefault((interruption.pool, interruption.region), {})
        earlier = seen.get(interruption.instance)
        if earlier is None or interruption.at < earlier:
            seen[interruption.instance] = interruption.at
    opened: dict[Place, OpenBreaker] = {}
    for place, instances in first_seen.items():
        times = sorted(instances.values())
        opening = [
            moment
            for index, moment in enumerate(times)
            if now - policy.cooldown < moment
            and sum(1 for other in times[: index + 1] if other > moment - policy.window)
            >= policy.interruptions
        ]
        if opening:
            pool, region = place
            opened[place] = OpenBreaker(
                pool, region, opened_at=opening[0], closes_at=opening[-1] + policy.cooldown
            )
    return opened
