"""The test server's own routes (``tests.harness.service_server``), on FastAPI.

``POST /v1/test/executions`` submits any of the server's operations the way the host
routes submit theirs (202, ``Location``, ``?wait``), and
``POST /v1/test/pools/{name}/converge`` runs one convergence pass of a pool now (tests
drive the passes instead of waiting for the leader's loop). A module of their own: the
server's main module is what its forkserver imports for every worker, and no worker
needs FastAPI.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from mapt.service._app import Waited, Writer, submit


class TestExecution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    target: str
    arguments: dict[str, Any] = {}


def test_router() -> APIRouter:
    router = APIRouter(prefix="/v1/test", tags=["test"])

    @router.post("/executions", status_code=202)
    async def submit_test_execution(
        request: Request, body: TestExecution, _token: Writer, waited: Waited
    ) -> JSONResponse:
        service = request.app.state.service
        execution = submit(service, body.name, body.target, body.arguments)
        return await waited.answer(service, execution)

    @router.post("/pools/{name}/converge")
    async def converge_pool(request: Request, name: str, _token: Writer) -> dict[str, Any]:
        """One convergence pass over pool ``name`` now (the leader's loop, on demand)."""
        service = request.app.state.service
        decided = await anyio.to_thread.run_sync(service.pools.converge, name)
        service.dispatcher.wake()
        return {"launch": list(decided.launch), "remove": [name for name, _ in decided.remove]}

    return router
