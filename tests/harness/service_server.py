"""A real ``mapt serve`` server with the test operations, started by ``ServerProcess``.

It runs ``mapt.service.run_server`` (what ``mapt serve`` runs) with mapt's host
operations on simulated AWS (``tests.harness.service_hosts``, its services from
``tests.harness.service_services``), the operations of
``tests.harness.service_operations``, and one more route, ``POST /v1/test/executions``,
which submits any of them the way the host routes submit theirs (202, ``Location``,
``?wait``), and ``POST /v1/test/pools/{name}/converge``, one convergence pass of a pool
now (tests drive the passes instead of waiting for the leader's loop). Its settings
come as JSON on stdin, never in its arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from mapt.service import RecoveryPolicy, ServerSettings, Timing, run_server
from mapt.service._app import Waited, Writer, submit
from tests.harness.service_hosts import simulated_operations
from tests.harness.service_operations import OPERATIONS
from tests.harness.service_services import simulated_services


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


def main() -> None:
    config = json.load(sys.stdin)
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        database_url=config["database_url"],
        workers=config.get("workers", 2),
        timing=Timing(**config.get("timing", {})),
        recovery=RecoveryPolicy(**config.get("recovery", {})),
    )
    operations = {**OPERATIONS, **simulated_operations()}
    services = simulated_services(Path(config["engine_file"]))
    run_server(settings, operations=operations, services=services, routers=(test_router(),))


if __name__ == "__main__":
    main()
