"""Convergence planning for a pool: given its capacity, its members and the ranked
offers, what to launch and what to remove. Pure: no database, no cloud, no clock of
its own (the caller passes ``now``), so every rule is tested without AWS.

The rules, in order of precedence:

1. A leased member is never removed, whatever else holds.
2. The pool never has more than ``maximum`` live members (launches stop there).
3. Broken members (ERROR, unless an execution repairs them) and idle members that are
   stale (an old template, past
   ``max_lifetime``, or marked for recycling) are removed; the count they leave is
   launched again.
4. The pool holds ``target`` live members (0 while it drains): launches fill up to it,
   at most ``launch_budget`` in one pass; idle RUNNING members above it are removed,
   from the most crowded zone first (then the newest), so the members stay spread.
5. Launches go to the ranked offer (zone) with the fewest members, the better-ranked
   one on a tie, so one zone losing capacity does not empty the pool; a zone where a
   member is in ERROR comes after every other (its replacement goes elsewhere).
6. While no offer is known (no member has an allocation yet), one member is launched
   alone: its allocation ranks the offers the others are spread over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from mapt.core import InputError


class MemberState(str, Enum):
    """A member's host state, as the service's host state machine names it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    UPDATING = "UPDATING"
    ERROR = "ERROR"
    DELETING = "DELETING"
    DELETED = "DELETED"


# States that count as members (the host exists or is being made).
LIVE_STATES = frozenset(
    {MemberState.PENDING, MemberState.RUNNING, MemberState.UPDATING, MemberState.ERROR}
)


@dataclass(frozen=True)
class Capacity:
    """How many members a pool wants (``target``) and the bounds it stays within."""

    target: int
    minimum: int
    maximum: int

    def __post_init__(self) -> None:
        check_capacity(self.target, self.minimum, self.maximum)

    def scaled(self, delta: int) -> Capacity:
        """The capacity with ``target`` moved by ``delta``; ``CapacityError`` naming the
        bound it would cross (never above maximum, never below minimum)."""
        wanted = self.target + delta
        if wanted > self.maximum:
            raise CapacityError(
                f"the pool would hold {wanted} members, above its maximum {self.maximum}"
            )
        if wanted < self.minimum:
            raise CapacityError(
                f"the pool would hold {wanted} members, below its minimum {self.minimum}"
            )
        return replace(self, target=wanted)


class CapacityError(InputError):
    """A change that would take the pool past its minimum or maximum."""


def check_capacity(target: int, minimum: int, maximum: int, *, prefix: str = "capacity") -> None:
    """``InputError`` naming the field unless ``0 <= minimum <= target <= maximum``."""
    for name, value in (("minimum", minimum), ("target", target), ("maximum", maximum)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{prefix}.{name} {value!r} must be a whole number, 0 or more")
    if maximum < 1:
        raise InputError(f"{prefix}.maximum {maximum} must be at least 1")
    if minimum > maximum:
        raise InputError(
            f"{prefix}.minimum {minimum} is above {prefix}.maximum {maximum}: "
            "minimum <= target <= maximum"
        )
    if target < minimum:
        raise InputError(
            f"{prefix}.target {target} is below {prefix}.minimum {minimum}: "
            "minimum <= target <= maximum"
        )
    if target > maximum:
        raise InputError(
            f"{prefix}.target {target} is above {prefix}.maximum {maximum}: "
            "minimum <= target <= maximum"
        )


@dataclass(frozen=True)
class Member:
    """A pool member as the planner sees it."""

    name: str
    state: MemberState
    created_at: datetime
    leased: bool = False
    zone: str | None = None
    template: int = 0
    recycle: bool = False  # released under "replace": destroy it, launch a fresh one
    # An ERROR member an execution is at work on (an interrupted member being replaced,
    # a failed one being recovered): not broken yet.
    repairing: bool = False

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def idle(self) -> bool:
        return self.state is MemberState.RUNNING and not self.leased


@dataclass(frozen=True)
class Plan:
    """What one pass does: ``launch`` holds one zone per new member (None: wherever the
    allocation finds capacity), ``remove`` the members to destroy, each with why."""

    launch: tuple[str | None, ...] = ()
    remove: tuple[tuple[str, str], ...] = ()

    @property
    def removed(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.remove)

    @property
    def empty(self) -> bool:
        return not self.launch and not self.remove


def plan(
    capacity: Capacity,
    members: Sequence[Member],
    *,
    offers: Sequence[str] = (),
    template: int = 0,
    now: datetime,
    max_lifetime: timedelta | None = None,
    launch_budget: int,
    draining: bool = False,
) -> Plan:
    """The launches and removals that move ``members`` towards ``capacity``.

    ``offers`` are the zones ranked best first; ``template`` the pool's current
    template version; ``launch_budget`` how many launches this pass may start (the
    rate bound); ``draining`` a deleted pool that wants no member at all.
    """
    live = [member for member in members if member.live]
    removals: dict[str, str] = {}
    for member in live:
        if member.leased:
            continue
        reason = _stale(member, template, now, max_lifetime)
        if reason is not None:
            removals[member.name] = reason
    wanted = 0 if draining else capacity.target
    keeping = [member for member in live if member.name not in removals]
    surplus = len(keeping) - wanted
    if surplus > 0:
        for member in _removal_order(keeping):
            if surplus == 0:
                break
            removals[member.name] = "draining" if draining else "above target"
            surplus -= 1
    kept = [member for member in live if member.name not in removals]
    room = capacity.maximum - len(kept)
    missing = max(0, min(wanted - len(kept), room, max(launch_budget, 0)))
    if not offers:
        scouting = any(m.state is not MemberState.RUNNING and m.zone is None for m in kept)
        missing = min(missing, 0 if scouting else 1)
    failing = {member.zone for member in live if member.state is MemberState.ERROR}
    launches = _spread(offers, kept, failing, missing)
    return Plan(launch=launches, remove=tuple(removals.items()))


def spread(offers: Sequence[str], members: Sequence[Member], count: int) -> tuple[str | None, ...]:
    """The zones of ``count`` new members, as ``plan`` assigns its launches (rule 5):
    for a launch outside a pass (a member added, a cold start)."""
    live = [member for member in members if member.live]
    failing = {member.zone for member in live if member.state is MemberState.ERROR}
    healthy = [member for member in live if member.state is not MemberState.ERROR]
    return _spread(offers, healthy, failing, count)


def _spread(
    offers: Sequence[str], kept: Sequence[Member], failing: set[str | None], count: int
) -> tuple[str | None, ...]:
    zones = Counter(member.zone for member in kept if member.zone is not None)
    launches: list[str | None] = []
    for _ in range(count):
        zone = _least_crowded(offers, zones, failing)
        launches.append(zone)
        if zone is not None:
            zones[zone] += 1
    return tuple(launches)


def _stale(
    member: Member, template: int, now: datetime, max_lifetime: timedelta | None
) -> str | None:
    """Why an unleased member must go (broken, recycled, old template, too old), or None."""
    if member.state is MemberState.ERROR and not member.repairing:
        return "in ERROR"
    if member.state is not MemberState.RUNNING:
        return None  # busy: an execution is at work on it
    if member.recycle:
        return "recycled after its lease"
    if member.template != template:
        return f"template {member.template} replaced by {template}"
    if max_lifetime is not None and now - member.created_at >= max_lifetime:
        return "past the pool's max_lifetime"
    return None


def _removal_order(members: Sequence[Member]) -> list[Member]:
    """Idle RUNNING members, most crowded zone first, newest first within it."""
    zones = Counter(member.zone for member in members)
    idle = [member for member in members if member.idle]
    return sorted(idle, key=lambda m: (-zones[m.zone], -m.created_at.timestamp(), m.name))


def _least_crowded(
    offers: Sequence[str], zones: Counter[str], failing: set[str | None]
) -> str | None:
    if not offers:
        return None
    return min(
        enumerate(offers),
        key=lambda ranked: (ranked[1] in failing, zones[ranked[1]], ranked[0]),
    )[1]


def pick_idle(
    members: Sequence[Member],
    template: int,
    *,
    now: datetime,
    max_lifetime: timedelta | None = None,
) -> Member | None:
    """The member a new lease gets: the oldest idle RUNNING one that is not stale.

    Stale is the planner's rule (``_stale``, with the same ``template``, ``now`` and
    ``max_lifetime``): the oldest member is the first to pass ``max_lifetime``, so
    without it a lease would take the very member the next pass is to remove.
    """
    fresh = [
        member
        for member in members
        if member.idle and _stale(member, template, now, max_lifetime) is None
    ]
    return min(fresh, key=lambda m: (m.created_at, m.name), default=None)
