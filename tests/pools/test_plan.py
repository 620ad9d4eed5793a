"""The convergence planner of a pool: what one pass launches and removes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapt.core import InputError
from mapt.pools import Capacity, CapacityError, Member, MemberState, pick_idle, plan

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def _member(
    name: str,
    state: MemberState = MemberState.RUNNING,
    *,
    leased: bool = False,
    zone: str | None = "us-east-1a",
    age: int = 10,
    template: int = 1,
    recycle: bool = False,
) -> Member:
    return Member(
        name=name,
        state=state,
        created_at=NOW - timedelta(minutes=age),
        leased=leased,
        zone=zone,
        template=template,
        recycle=recycle,
    )


def _plan(capacity: Capacity, members: list[Member], **extra: object) -> object:
    arguments = {"offers": ZONES, "template": 1, "now": NOW, "launch_budget": 10, **extra}
    return plan(capacity, members, **arguments)  # type: ignore[arg-type]


def test_an_empty_pool_launches_its_target_spread_over_the_ranked_zones() -> None:
    decided = plan(Capacity(3, 1, 5), [], offers=ZONES, now=NOW, launch_budget=10, template=1)
    assert sorted(z for z in decided.launch if z) == sorted(ZONES)
    assert decided.remove == ()


def test_launches_go_to_the_least_crowded_zone_first() -> None:
    members = [_member("a", zone="us-east-1a"), _member("b", zone="us-east-1a")]
    decided = plan(Capacity(4, 0, 4), members, offers=ZONES, now=NOW, launch_budget=10, template=1)
    assert decided.launch == ("us-east-1b", "us-east-1c")


def test_the_launch_budget_bounds_one_pass() -> None:
    decided = plan(Capacity(5, 0, 5), [], offers=ZONES, now=NOW, launch_budget=2, template=1)
    assert len(decided.launch) == 2
    spent = plan(Capacity(5, 0, 5), [], offers=ZONES, now=NOW, launch_budget=0, template=1)
    assert spent.launch == ()


def test_scaling_down_removes_idle_members_only_from_the_most_crowded_zone() -> None:
    members = [
        _member("a", zone="us-east-1a", leased=True),
        _member("b", zone="us-east-1a", age=5),
        _member("c", zone="us-east-1a", age=1),
        _member("d", zone="us-east-1b"),
        _member("e", zone="us-east-1c", leased=True),
    ]
    decided = plan(Capacity(2, 0, 5), members, offers=ZONES, now=NOW, launch_budget=10, template=1)
    removed = decided.removed
    assert "a" not in removed and "e" not in removed
    # The newest idle in the crowded zone goes first; then the pool keeps what is leased.
    assert [name for name, _ in decided.remove][:2] == ["c", "b"]
    assert removed == {"b", "c", "d"}
    assert decided.launch == ()


def test_members_of_an_old_template_are_replaced_once_idle() -> None:
    members = [_member("old-idle", template=1), _member("old-leased", template=1, leased=True)]
    decided = plan(Capacity(2, 0, 3), members, offers=ZONES, now=NOW, launch_budget=10, template=2)
    assert decided.removed == {"old-idle"}
    assert len(decided.launch) == 1  # the leased one still counts


def test_broken_recycled_and_too_old_members_go_and_are_replaced() -> None:
    members = [
        _member("broken", MemberState.ERROR),
        _member("returned", recycle=True),
        _member("ancient", age=600),
        _member("fine"),
    ]
    decided = plan(
        Capacity(4, 0, 4), members, offers=ZONES, now=NOW, launch_budget=10, template=1,
        max_lifetime=timedelta(hours=2),
    )  # fmt: skip
    assert decided.removed == {"broken", "returned", "ancient"}
    assert len(decided.launch) == 3


def test_an_error_member_being_replaced_after_an_interruption_is_kept_and_counted() -> None:
    repairing = Member(
        name="interrupted", state=MemberState.ERROR, created_at=NOW, zone="us-east-1a",
        template=1, repairing=True,
    )  # fmt: skip
    decided = plan(
        Capacity(2, 0, 3), [repairing, _member("fine")], offers=ZONES, now=NOW,
        launch_budget=10, template=1,
    )  # fmt: skip
    assert decided.empty


def test_a_draining_pool_removes_every_idle_member_and_launches_none() -> None:
    members = [_member("a"), _member("b", leased=True), _member("c", MemberState.PENDING)]
    decided = plan(
        Capacity(2, 0, 3), members, offers=ZONES, now=NOW, launch_budget=10, template=1,
        draining=True,
    )  # fmt: skip
    assert decided.removed == {"a"} and decided.launch == ()


def test_busy_members_are_neither_removed_nor_counted_twice() -> None:
    members = [_member("p", MemberState.PENDING), _member("d", MemberState.DELETING)]
    decided = plan(Capacity(1, 0, 2), members, offers=ZONES, now=NOW, launch_budget=10, template=1)
    assert decided.empty  # the PENDING one is the target; the DELETING one is gone


@pytest.mark.parametrize(
    ("target", "minimum", "maximum", "field"),
    [(3, 4, 5, "capacity.target"), (6, 0, 5, "capacity.target"), (1, 3, 2, "capacity.minimum"),
     (-1, 0, 2, "capacity.target"), (0, 0, 0, "capacity.maximum")],
)  # fmt: skip
def test_capacity_outside_minimum_target_maximum_names_the_field(
    target: int, minimum: int, maximum: int, field: str
) -> None:
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        Capacity(target, minimum, maximum)


def test_scaling_never_crosses_the_bounds() -> None:
    capacity = Capacity(2, 1, 3)
    assert capacity.scaled(1).target == 3
    with pytest.raises(CapacityError, match="above its maximum 3"):
        capacity.scaled(2)
    with pytest.raises(CapacityError, match="below its minimum 1"):
        capacity.scaled(-2)


def test_a_lease_gets_the_oldest_fresh_idle_member() -> None:
    members = [
        _member("leased", leased=True, age=90),
        _member("stale", template=0, age=80),
        _member("returned", recycle=True, age=70),
        _member("young", age=1),
        _member("old", age=60),
        _member("booting", MemberState.PENDING, age=100),
    ]
    chosen = pick_idle(members, template=1, now=NOW)
    assert chosen is not None and chosen.name == "old"
    assert pick_idle(members[:3], template=1, now=NOW) is None


def test_a_lease_never_gets_a_member_the_planner_would_remove_as_too_old() -> None:
    members = [_member("ancient", age=600), _member("old", age=60), _member("young", age=1)]
    lifetime = timedelta(hours=2)
    chosen = pick_idle(members, template=1, now=NOW, max_lifetime=lifetime)
    assert chosen is not None and chosen.name == "old"
    decided = _plan(Capacity(3, 0, 3), members, max_lifetime=lifetime)
    assert decided.removed == {"ancient"}  # type: ignore[attr-defined]
    assert pick_idle(members[:1], template=1, now=NOW, max_lifetime=lifetime) is None


_states = st.sampled_from(list(MemberState))
_members = st.lists(
    st.builds(
        lambda i, state, leased, zone, age, template, recycle: _member(
            f"m{i}", state, leased=leased and state is not MemberState.DELETED, zone=zone,
            age=age, template=template, recycle=recycle,
        ),
        st.integers(0, 10_000), _states, st.booleans(), st.sampled_from((*ZONES, None)),
        st.integers(0, 1000), st.integers(0, 2), st.booleans(),
    ),
    max_size=12,
    unique_by=lambda m: m.name,
)  # fmt: skip


@st.composite
def _capacities(draw: st.DrawFn) -> Capacity:
    maximum = draw(st.integers(1, 8))
    minimum = draw(st.integers(0, maximum))
    return Capacity(draw(st.integers(minimum, maximum)), minimum, maximum)


@settings(max_examples=300, deadline=None)
@given(
    capacity=_capacities(),
    members=_members,
    budget=st.integers(0, 5),
    template=st.integers(0, 2),
    draining=st.booleans(),
)
def test_properties_of_every_plan(
    capacity: Capacity, members: list[Member], budget: int, template: int, draining: bool
) -> None:
    decided = plan(
        capacity, members, offers=ZONES, template=template, now=NOW,
        max_lifetime=timedelta(hours=10), launch_budget=budget, draining=draining,
    )  # fmt: skip
    by_name = {member.name: member for member in members}
    removed = decided.removed
    # Never a leased member, never one that is not live, never one twice.
    assert all(not by_name[name].leased and by_name[name].live for name in removed)
    assert len(removed) == len(decided.remove)
    # Never above maximum: what stays plus what is launched.
    staying = sum(1 for m in members if m.live and m.name not in removed)
    assert staying + len(decided.launch) <= max(capacity.maximum, staying)
    assert len(decided.launch) <= budget
    if draining:
        assert decided.launch == ()
        assert all(m.name in removed for m in members if m.idle)
    else:
        # Never both launching and removing a healthy idle member for being above target.
        assert not (decided.launch and any(why == "above target" for _, why in decided.remove))
        # Below target with budget and room: it launches.
        wanted = min(capacity.target, capacity.maximum)
        if staying < wanted and budget > 0 and staying < capacity.maximum:
            assert decided.launch
        # Above target after the pass: no idle member is left standing.
        if staying > capacity.target:
            assert not any(m.idle and m.name not in removed for m in members)


def test_a_zone_that_lost_capacity_gets_no_replacement_while_another_has_room() -> None:
    """Zone a's member broke (its capacity is gone): it goes, its replacement is made
    in another zone, and the members of the other zones stay."""
    members = [
        _member("a", MemberState.ERROR, zone="us-east-1a"),
        _member("b", zone="us-east-1b"),
        _member("c", zone="us-east-1c"),
    ]
    decided = _plan(Capacity(3, 0, 3), members)
    assert decided.remove == (("a", "in ERROR"),)  # type: ignore[attr-defined]
    assert decided.launch == ("us-east-1b",)  # type: ignore[attr-defined]


def test_with_no_offer_known_one_member_scouts_the_market_first() -> None:
    """No member has an allocation yet: one launch, whose allocation ranks the zones
    the rest are spread over; none more while it is on its way."""
    empty = plan(Capacity(3, 0, 3), [], offers=(), now=NOW, launch_budget=10, template=1)
    assert empty.launch == (None,)
    scouting = [_member("scout", MemberState.PENDING, zone=None)]
    waiting = plan(Capacity(3, 0, 3), scouting, offers=(), now=NOW, launch_budget=10, template=1)
    assert waiting.launch == ()
    known = plan(
        Capacity(3, 0, 3), [_member("scout", zone="us-east-1b")], offers=ZONES, now=NOW,
        launch_budget=10, template=1,
    )  # fmt: skip
    assert known.launch == ("us-east-1a", "us-east-1c")


def test_added_members_are_spread_as_launches_are() -> None:
    from mapt.pools import spread

    members = [_member("a", zone="us-east-1a"), _member("b", MemberState.ERROR, zone="us-east-1b")]
    assert spread(ZONES, members, 3) == ("us-east-1c", "us-east-1a", "us-east-1c")
    assert spread((), members, 2) == (None, None)
