"""``mapt serve``: the app on uvicorn, with structured logs and a graceful stop.

The server binds its socket first (a port in use is one ``Error:`` line, not a
traceback), opens and migrates the database, takes the single-server lock on SQLite,
and runs uvicorn. SIGTERM or SIGINT stops it gracefully: no new requests, the
dispatcher stops claiming, each worker stops its operation at a safe point and hands
its execution back to pending, and the process ends (exit 143 on SIGTERM, 130 on
SIGINT, as the CLI does). Logs are JSON lines on stderr: one object per record with its
time, level, logger and message, plus the request's method, path, status and the token's
name (never the token) for each request.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mapt.core import InputError, OperationError, RedactingFilter
from mapt.hosts import HostServices
from mapt.service._database import migrate, open_database, server_lock
from mapt.service._event_intake import EVENT_COUNTS, EventIntakeSettings, event_intake_task
from mapt.service._executions import Executions
from mapt.service._hosts import host_operations
from mapt.service._interruptions import (
    InterruptionCollector,
    InterruptionSettings,
    interruption_operations,
    on_host_event,
)
from mapt.service._leader import Leadership, LeaderTask
from mapt.service._pools import PoolSettings, pool_operations, pool_task
from mapt.service._reconciler import RecoveryPolicy, reconciler_task
from mapt.service._workers import Dispatcher, Operation, Timing

_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({})))
_LOGGERS = {"mapt": logging.INFO, "uvicorn": logging.INFO, "alembic": logging.WARNING}
# uvicorn's terminal colours; our own bookkeeping.
_DROPPED = {"color_message", "taskName"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record; extra fields kept as keys.

    Secrets are masked before it formats, by its handler's ``RedactingFilter``
    (message and traceback), as in the CLI's logs.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry and key not in _DROPPED:
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_service_logging() -> None:
    """Send mapt's, uvicorn's and Alembic's logs to stderr as JSON lines, secrets masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RedactingFilter())
    handler.set_name("mapt-service")
    for name, level in _LOGGERS.items():
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() in ("mapt", "mapt-service")]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


@dataclass(frozen=True)
class ServerSettings:
    """Where to listen, where the records are, how many executions run at once, and
    how failed hosts are detected and recovered, how pools converge, how interrupted
    hosts are replaced and when the circuit breaker stops spot launches."""

    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str | None = None
    workers: int = 2
    timing: Timing = field(default_factory=Timing)
    recovery: RecoveryPolicy = field(default_factory=RecoveryPolicy)
    pools: PoolSettings = field(default_factory=PoolSettings)
    interruptions: InterruptionSettings = field(default_factory=InterruptionSettings)
    # Which regions' EC2 events the leader takes in (none by default: no intake task).
    events: EventIntakeSettings = field(default_factory=EventIntakeSettings)
    # The hosted zone of the hosts created without a dns_zone field (``--dns-zone``).
    dns_zone: str | None = None

    def __post_init__(self) -> None:
        if self.dns_zone is not None:
            from mapt.targets.aws import check_zone_name

            object.__setattr__(self, "dns_zone", check_zone_name(self.dns_zone))
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port {self.port} must be between 0 and 65535")
        if self.workers < 1:
            raise InputError(f"--workers {self.workers} must be at least 1")


def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InputError(f"--host {host!r} is not an address of this machine: {error}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise OperationError(
            f"cannot listen on {host}:{port}: {error.strerror}",
            hint="Pick another --port, or stop what listens there.",
        ) from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def leader_tasks(settings: ServerSettings) -> tuple[LeaderTask, ...]:
    """The loops every server runs while it leads (see ``mapt.service._leader``)."""
    tasks: tuple[LeaderTask, ...] = (
        reconciler_task(settings.recovery),
        pool_task(settings.pools, breaker=settings.interruptions.breaker),
    )
    if settings.events.enabled:
        tasks += (event_intake_task(settings.events, on_host_event),)
    return tasks


def run_server(
    settings: ServerSettings,
    *,
    operations: Mapping[str, Operation] | None = None,
    services: HostServices | None = None,
    routers: tuple[Any, ...] = (),
    leader_only: Sequence[LeaderTask] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT. ``operations`` default to mapt's own (the hosts'),
    run on ``services`` (default: the real ``HostServices``: Pulumi, AWS, SSH);
    ``leader_only`` (default ``leader_tasks(settings)``) run while this server leads.

    Raises ``MaptError`` for what stops it from starting (bad address, port in use,
    database unreachable, another server on the SQLite file).
    """
    import uvicorn

    from mapt.service._app import Service, create_app

    configure_service_logging()
    settings.events.check_secrets()
    sock = _listen(settings.host, settings.port)
    database = open_database(settings.database_url, migrate=False)
    with server_lock(database):
        migrate(database)
        host_services = HostServices() if services is None else services
        server_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        dispatcher = Dispatcher(
            store=Executions(database),
            operations=dict(
                {
                    **host_operations(),
                    **pool_operations(),
                    **interruption_operations(settings.interruptions),
                }
                if operations is None
                else operations
            ),
            server_id=server_id,
            workers=settings.workers,
            timing=settings.timing,
            services=host_services,
        )
        service = Service(
            database=database,
            dispatcher=dispatcher,
            host_services=host_services,
            routers=routers,
            dns_zone=settings.dns_zone,
            breaker=settings.interruptions.breaker,
        )
        service.metrics.register(InterruptionCollector(database, settings.interruptions.breaker))
        service.metrics.register(EVENT_COUNTS)
        app = create_app(service)
        host, port = sock.getsockname()[:2]
        logging.getLogger("mapt.service").info(
            "listening on http://%s:%s (server %s)",
            host,
            port,
            server_id,
            extra={"address": f"http://{host}:{port}", "server_id": server_id},
        )
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=int(settings.timing.shutdown_grace),
        )
        leadership = Leadership(
            database=database,
            tasks=tuple(leader_tasks(settings) if leader_only is None else leader_only),
            server_id=server_id,
            services=host_services,
            submitted=dispatcher.wake,
            retry=settings.timing.leader,
        )
        leadership.start()
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            leadership.stop()
            sock.close()
            database.dispose()
