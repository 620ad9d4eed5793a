"""``mapt.pools``: pools of warm hosts, planned without a cloud.

``plan`` decides what a pool's convergence pass launches and removes from its
``Capacity``, its ``Member`` records and the ranked offers; ``pick_idle`` which member a
lease gets. The service (``mapt serve``) records pools, members and leases and carries
the plans out as host executions; nothing here touches a database or AWS.
"""

from mapt.pools._plan import (
    LIVE_STATES,
    Capacity,
    CapacityError,
    Member,
    MemberState,
    Plan,
    check_capacity,
    pick_idle,
    plan,
    spread,
)

__all__ = [
    "LIVE_STATES",
    "Capacity",
    "CapacityError",
    "Member",
    "MemberState",
    "Plan",
    "check_capacity",
    "pick_idle",
    "plan",
    "spread",
]
