"""What a host made by the CLI cost, from its state: one interval since its creation.

The host stack records where the host runs (region, AZ, types, spot), its OS (the spot
product) and when it was first created; that is one interval, from creation until now,
priced by ``mapt.costs``. A spot replacement after an interruption runs in the same
group, AZ and types, so it is priced alike (the minutes without an instance between the
two are counted: the CLI keeps no history; the service does). State that cannot be
read, or a host stack that does not record what pricing needs, is an error, never zero.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from mapt.core import OperationError

if TYPE_CHECKING:
    from mapt.costs import CostReport, PriceSource
    from mapt.stacks import Engine


def host_costs(
    engine: Engine,
    backend_url: str | None,
    project: str,
    prices: PriceSource,
    *,
    start: date | None,
    end: date | None,
    now: datetime,
) -> CostReport:
    """The costs of ``project``'s host over the days [start, end], from its state."""
    from mapt.costs import (
        Cost,
        CostReport,
        Interval,
        Placement,
        cost_report,
        price_interval,
        window,
    )
    from mapt.hosts._requests import PRODUCT_DESCRIPTIONS
    from mapt.hosts._status import HostNotFoundError
    from mapt.targets.aws import (
        HOST_STACK,
        OUTPUT_AVAILABILITY_ZONE,
        OUTPUT_BASTION_HOST,
        OUTPUT_CREATED_AT,
        OUTPUT_INSTANCE_ID,
        OUTPUT_INSTANCE_TYPES,
        OUTPUT_OS,
        OUTPUT_REGION,
        OUTPUT_SPOT,
    )

    low, high = window(start, end, now)
    stacks = [s for s in engine.list_stacks(backend_url) if s.project in (project, "")]
    for summary in stacks:
        if summary.unreadable is not None:
            raise OperationError(
                f"the costs of project {project!r} are unknown: {summary.location} cannot "
                f"be read ({summary.unreadable})"
            )
    stacks = [s for s in stacks if s.project == project]
    if not stacks:
        raise HostNotFoundError(project, backend_url)
    host = next((s for s in stacks if s.kind == HOST_STACK), None)
    if host is None:  # only a spot choice: no machine was ever deployed
        return CostReport(Cost(), {})
    outputs = host.outputs
    needed = (
        OUTPUT_REGION,
        OUTPUT_AVAILABILITY_ZONE,
        OUTPUT_INSTANCE_TYPES,
        OUTPUT_SPOT,
        OUTPUT_OS,
        OUTPUT_CREATED_AT,
    )
    missing = [name for name in needed if outputs.get(name) in (None, "", [])]
    if missing or outputs[OUTPUT_OS] not in PRODUCT_DESCRIPTIONS:
        what = missing[0] if missing else f"a known OS (it says {outputs[OUTPUT_OS]!r})"
        raise OperationError(
            f"the costs of project {project!r} are unknown: stack {host.stack_name} "
            f"records no {what}",
            hint="Hosts created by mapt before costs existed do not record it; "
            "re-run `mapt aws host create` with the same flags to record it.",
        )
    try:
        created = datetime.fromisoformat(str(outputs[OUTPUT_CREATED_AT]).replace("Z", "+00:00"))
    except ValueError:
        raise OperationError(
            f"the costs of project {project!r} are unknown: stack {host.stack_name} records "
            f"creation time {outputs[OUTPUT_CREATED_AT]!r}, which is not a time"
        ) from None
    placement = Placement(
        region=str(outputs[OUTPUT_REGION]),
        availability_zone=str(outputs[OUTPUT_AVAILABILITY_ZONE]),
        instance_types=tuple(str(t) for t in outputs[OUTPUT_INSTANCE_TYPES]),
        spot=bool(outputs[OUTPUT_SPOT]),
        product=PRODUCT_DESCRIPTIONS[str(outputs[OUTPUT_OS])],
    )
    interval = Interval(
        id=None,
        host=project,
        pool=None,
        placement=placement,
        airgap=OUTPUT_BASTION_HOST in outputs,
        # A spot host without a balancer records the instance its name points at.
        load_balancer=placement.spot and OUTPUT_INSTANCE_ID not in outputs,
        started_at=created,
        ended_at=None,
        start_reason="created",
        end_reason=None,
    )
    return cost_report(
        [interval], low, high, lambda i, a, b: price_interval(prices, i.placement, a, b)
    )
