"""A real ``mapt serve`` server with the test operations, started by ``ServerProcess``.

It runs ``mapt.service.run_server`` (what ``mapt serve`` runs) with the operations of
``tests.harness.service_operations``, mapt's host and pool operations on simulated AWS
(``tests.harness.service_hosts``, its services from ``tests.harness.service_services``)
unless its settings say ``"host_operations": false``, and the test routes of
``tests.harness.service_test_routes``. Its settings come as JSON on stdin, never in its
arguments.

The server's forkserver imports this module (the server's main module) before the
operations' preload, so its top level imports what every worker needs (mapt.service,
the test operations, the services each job carries) and ``main`` the rest: FastAPI's
routes and the host operations, whose preload is what makes a forkserver costly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mapt.service import Operation, RecoveryPolicy, ServerSettings, Timing, run_server
from tests.harness.service_operations import OPERATIONS
from tests.harness.service_services import simulated_services


def main() -> None:
    from tests.harness.service_test_routes import test_router

    config = json.load(sys.stdin)
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        database_url=config["database_url"],
        workers=config.get("workers", 2),
        timing=Timing(**config.get("timing", {})),
        recovery=RecoveryPolicy(**config.get("recovery", {})),
    )
    operations: dict[str, Operation] = dict(OPERATIONS)
    if config.get("host_operations", True):
        from tests.harness.service_hosts import simulated_operations

        operations.update(simulated_operations())
    services = simulated_services(Path(config["engine_file"]))
    run_server(settings, operations=operations, services=services, routers=(test_router(),))


if __name__ == "__main__":
    main()
