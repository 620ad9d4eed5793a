"""The cost routes and ``GET /metrics``.

``GET /v1/hosts/{name}/costs`` answers exactly the spot-api's document (``costs``:
``actual``, ``potential``; ``running`` hours; ``savings`` percent); ``?detail=true`` adds
each interval and the list-priced network resources. ``GET /v1/costs`` answers the total
and each pool. A route over other intervals (a pool's) is one line::

    return await cost_answer(request, lambda book: book.pool(name, *days), detail)

with ``days: CostDays`` and ``detail: DetailQuery`` among its parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from mapt.costs import CostReport, parse_day
from mapt.service._app import Reader, _service
from mapt.service._costs import CostBook, costs_document

_DAY = "A day, YYYY-MM-DD (UTC); both days count."


def cost_days(
    start: Annotated[str | None, Query(description=f"From this day. {_DAY}")] = None,
    end: Annotated[str | None, Query(description=f"Until this day. {_DAY}")] = None,
) -> tuple[date | None, date | None]:
    """The ``start`` and ``end`` days asked (422 naming the parameter when not a day)."""
    return (
        None if start is None else parse_day(start, "start"),
        None if end is None else parse_day(end, "end"),
    )


CostDays = Annotated[tuple[date | None, date | None], Depends(cost_days)]
DetailQuery = Annotated[
    bool, Query(description="Add each interval and the list-priced network resources.")
]


async def cost_answer(
    request: Request, report_of: Callable[[CostBook], CostReport], detail: bool = False
) -> dict[str, Any]:
    """The spot-api's cost document of ``report_of(the service's cost book)``."""
    book = _service(request).costs
    report = await anyio.to_thread.run_sync(report_of, book)
    return report.as_detail() if detail else report.as_spot_api()


def costs_router() -> APIRouter:
    router = APIRouter(tags=["costs"])

    @router.get("/v1/hosts/{name}/costs")
    async def host_costs(
        request: Request, name: str, _token: Reader, days: CostDays, detail: DetailQuery = False
    ) -> dict[str, Any]:
        """What the host's instance cost on spot (``actual``) against on demand
        (``potential``), its running hours and the savings, over the days asked."""
        return await cost_answer(request, lambda book: book.host(name, *days), detail)

    @router.get("/v1/costs")
    async def all_costs(request: Request, _token: Reader, days: CostDays) -> dict[str, Any]:
        """Every host's costs: in total, by pool, and the hosts of no pool."""
        book = _service(request).costs
        total, pools = await anyio.to_thread.run_sync(lambda: book.by_pool(*days))
        return costs_document(total, pools)

    @router.get("/metrics", tags=["server"])
    async def metrics(request: Request, _token: Reader) -> Response:
        """Prometheus text format; needs a (read-only) token like every other read."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry = _service(request).metrics
        body = await anyio.to_thread.run_sync(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
