"""``mapt.client``: the HTTP API of ``mapt serve`` for Python callers and the CLI.

``Client(url, token)`` holds ``hosts`` (create, list, get, status, update, delete,
connection), ``pools`` (pools, their members and leases) and ``executions`` (get,
list, logs, cancel, wait), plus ``ping`` and ``version``. Answers are frozen records
(``Execution``, ``Host``); a finished create's
result becomes the library's ``HostRecord`` through ``host_record``. Errors are the
``mapt.core`` errors the local command raises, with the server's message; the 404,
409, 401 and 403 answers have classes of their own (``NotFoundError``, ...), each a
subclass of the ``mapt.core`` class its exit code belongs to.

Importing this package loads httpx (not the server's FastAPI or SQLAlchemy).
"""

from mapt._api import ExecutionStatus, HostState
from mapt.client._client import (
    DEFAULT_TIMEOUT,
    Client,
    Executions,
    Hosts,
    PoolLease,
    Pools,
    check_server_url,
    check_token,
)
from mapt.client._errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    ServerErrorMixin,
    error_class,
    server_error,
)
from mapt.client._records import (
    Execution,
    ExecutionFailure,
    Host,
    address_change,
    destroy_record,
    host_connection,
    host_record,
    host_status,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "Execution",
    "ExecutionFailure",
    "ExecutionStatus",
    "Executions",
    "ForbiddenError",
    "Host",
    "HostState",
    "Hosts",
    "NotFoundError",
    "PayloadTooLargeError",
    "PoolLease",
    "Pools",
    "ServerErrorMixin",
    "address_change",
    "check_server_url",
    "check_token",
    "destroy_record",
    "error_class",
    "host_connection",
    "host_record",
    "host_status",
    "server_error",
]
