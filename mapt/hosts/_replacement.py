"""What to do with a spot host AWS is taking back: stay in place, move, or go on demand.

After an interruption warning or a rebalance recommendation, the host's Auto Scaling
group gets a bound to launch a replacement in the same place
(``mapt.targets.aws.wait_for_replacement``). ``plan_replacement`` turns what it did,
and the circuit breaker of the host's place, into the plan the create path carries out:

- the breaker is open: the group is not waited for; the host leaves the region, on
  demand when its strategy allows it, else on the next spot candidate elsewhere;
- the group replaced the instance: the host stays, and the create path refreshes it,
  waits for readiness and sets the new machine up;
- the group could not (AWS's capacity refusal, or no replacement within the bound):
  the offer is recorded failed with AWS's reason and the host moves to the next
  candidate (on demand when none is left and the request allows it), as a create
  whose launch was refused;
- AWS refused for another reason (a bad image, a quota): no other place would launch
  either; ``OperationError``, the host stays ERROR.

Pure: no AWS call, no record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from mapt.core import OperationError

if TYPE_CHECKING:
    from mapt.targets.aws import GroupReplacement

# The reason recorded for an offer left because its place's breaker is open.
BREAKER_OPEN = "BreakerOpen"


class ReplacementOutcome(str, Enum):
    """How a replacement ended: where the host runs now, or that it did not."""

    IN_PLACE = "in-place"
    MOVED = "moved"
    ON_DEMAND = "on-demand"
    FAILED = "failed"


@dataclass(frozen=True)
class ReplacementPlan:
    """Stay (``move_reason`` None), or leave the kept offer for ``move_reason``:
    ``avoid_regions`` are not tried, ``on_demand`` goes straight to on demand."""

    move_reason: str | None = None
    avoid_regions: tuple[str, ...] = ()
    on_demand: bool = False

    @property
    def in_place(self) -> bool:
        return self.move_reason is None


def plan_replacement(
    replacement: GroupReplacement | None,
    *,
    region: str,
    breaker_open: bool,
    fallback_on_demand: bool,
) -> ReplacementPlan:
    """The plan for an interrupted host in ``region`` (see the module doc).

    ``replacement`` is what the group did; None only when the breaker is open (the
    group is not waited for then).
    """
    if breaker_open:
        return ReplacementPlan(
            move_reason=BREAKER_OPEN, avoid_regions=(region,), on_demand=fallback_on_demand
        )
    if replacement is None:
        raise ValueError("without an open breaker, the plan needs what the group did")
    refused = replacement.refused
    if refused is None:
        return ReplacementPlan()
    if not refused.capacity_failure:
        raise OperationError(refused.message, hint=refused.hint)
    return ReplacementPlan(move_reason=refused.reason_code)
