"""``mapt serve``: the control plane over HTTP (FastAPI, SQL records, worker processes).

A thin shell over the library, as the CLI is: routers translate HTTP into library
calls and records into JSON. The work itself runs as durable executions (rows in SQL,
claimed by worker processes, with heartbeats), so a server's death loses nothing.
Importing this package loads SQLAlchemy; FastAPI and uvicorn load with the app and the
server. The CLI imports it only inside ``mapt serve``'s commands.
"""

from mapt.service._database import (
    DATABASE_FILE,
    Database,
    default_database_url,
    migrate,
    open_database,
    parse_database_url,
    refuse_password_in_arguments,
    server_lock,
)
from mapt.service._errors import (
    HTTP_STATUS,
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    error_body,
    http_status,
)
from mapt.service._event_intake import (
    EventIntake,
    EventIntakeSettings,
    UnusableMessage,
    event_intake_task,
    hosts_by_region,
    parse_envelope,
)
from mapt.service._executions import (
    MAX_ATTEMPTS,
    Execution,
    ExecutionError,
    Executions,
    ExecutionStatus,
    LogLine,
)
from mapt.service._host_events import HostEvent, HostEventKind
from mapt.service._interruptions import (
    InterruptionSettings,
    on_host_event,
)
from mapt.service._leader import LeaderContext, Leadership, LeaderTask
from mapt.service._pools import Lease, Pool, PoolMember, Pools, PoolSettings, Strategy
from mapt.service._reconciler import RecoveryPolicy, reconcile, reconciler_task
from mapt.service._server import JsonLogFormatter, ServerSettings, leader_tasks, run_server
from mapt.service._tokens import (
    TOKEN_PREFIX,
    TokenRecord,
    authenticate,
    check_token_name,
    create_token,
    list_tokens,
    parse_expiry,
    revoke_token,
)
from mapt.service._workers import Dispatcher, ExecutionContext, Operation, Timing

__all__ = [
    "DATABASE_FILE",
    "HTTP_STATUS",
    "MAX_ATTEMPTS",
    "TOKEN_PREFIX",
    "AuthenticationError",
    "ConflictError",
    "Database",
    "Dispatcher",
    "EventIntake",
    "EventIntakeSettings",
    "Execution",
    "ExecutionContext",
    "ExecutionError",
    "ExecutionStatus",
    "Executions",
    "ForbiddenError",
    "HostEvent",
    "HostEventKind",
    "InterruptionSettings",
    "JsonLogFormatter",
    "LeaderContext",
    "LeaderTask",
    "Leadership",
    "Lease",
    "LogLine",
    "NotFoundError",
    "Operation",
    "PayloadTooLargeError",
    "Pool",
    "PoolMember",
    "PoolSettings",
    "Pools",
    "RecoveryPolicy",
    "ServerSettings",
    "Strategy",
    "Timing",
    "TokenRecord",
    "UnusableMessage",
    "authenticate",
    "check_token_name",
    "create_token",
    "default_database_url",
    "error_body",
    "event_intake_task",
    "hosts_by_region",
    "http_status",
    "leader_tasks",
    "list_tokens",
    "migrate",
    "on_host_event",
    "open_database",
    "parse_database_url",
    "parse_envelope",
    "parse_expiry",
    "reconcile",
    "reconciler_task",
    "refuse_password_in_arguments",
    "revoke_token",
    "run_server",
    "server_lock",
]
