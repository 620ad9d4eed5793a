"""The HTTP API: FastAPI routes that translate requests into library calls.

Routers hold no domain decision: they read the request, call ``Executions``, the token
functions or (later) the host lifecycle, and turn records into JSON. Every error is a
JSON body ``{"error": {"type", "message", "exit_code"}}`` with the status from
``mapt.service._errors.HTTP_STATUS``. Every mutating call answers ``202 Accepted`` with
``{"execution": {...}}`` and ``Location: /v1/executions/{id}``; with ``?wait=true`` it
answers when the execution ends (200), or with 202 when ``timeout`` seconds pass first.
"""

from __future__ import annotations

import asyncio
import functools
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from mapt import __version__
from mapt.core import MaptError, get_logger, redact, register_secret
from mapt.hosts import BreakerPolicy, HostServices
from mapt.service._costs import CostBook
from mapt.service._database import Database
from mapt.service._errors import (
    AuthenticationError,
    ForbiddenError,
    PayloadTooLargeError,
    bug_body,
    error_body,
    http_status,
)
from mapt.service._executions import Execution, Executions
from mapt.service._hosts import (
    Hosts,
    ManagedHost,
    host_connection,
    host_state,
)
from mapt.service._states import HostRequest
from mapt.service._tokens import TokenRecord, authenticate
from mapt.service._workers import Dispatcher

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from mapt.costs import PriceSource
    from mapt.service._pool_metrics import LeaseWaits
    from mapt.service._pools import Pools

_log = get_logger("mapt.service.http")

MAX_BODY_BYTES = 64 * 1024
DEFAULT_WAIT_SECONDS = 300.0
MAX_WAIT_SECONDS = 3600.0
_WAIT_POLL_SECONDS = 0.2
_READ_METHODS = {"GET", "HEAD", "OPTIONS"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Service:
    """What the routes act on: the database, its executions, and the worker side."""

    database: Database
    dispatcher: Dispatcher | None = None
    # What host reads act through (the workers get the same): default the real ones.
    host_services: HostServices = field(default_factory=HostServices)
    executions: Executions = field(init=False)
    hosts: Hosts = field(init=False)
    routers: tuple[APIRouter, ...] = ()
    # The hosted zone of hosts (and pools' templates) created without a dns_zone field
    # (``mapt serve --dns-zone``): ``with_default_zone``.
    dns_zone: str | None = None
    # The circuit breaker every pool launch follows (``mapt serve --breaker-*``).
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    pools: Pools = field(init=False)
    # Where costs get prices (default: AWS, through boto3), the book that prices hosts'
    # intervals, and the metrics registry features add their collectors to.
    prices: PriceSource | None = None
    costs: CostBook = field(init=False)
    metrics: CollectorRegistry = field(init=False)
    # The lease requests waiting for a pool member now (a metric of this server's).
    lease_waits: LeaseWaits = field(init=False)

    def __post_init__(self) -> None:
        from mapt.costs import AwsPrices
        from mapt.service._metrics import service_registry
        from mapt.service._pool_metrics import LeaseCollector, LeaseWaits
        from mapt.service._pools import Pools

        self.executions = Executions(self.database)
        self.hosts = Hosts(self.database, self.executions)
        self.pools = Pools(self.database, self.executions, self.hosts, breaker=self.breaker)
        self.costs = CostBook(self.database, self.prices or AwsPrices())
        self.metrics = service_registry(self.database, self.costs)
        self.lease_waits = LeaseWaits()
        self.metrics.register(LeaseCollector(self.database, self.lease_waits))

    def with_default_zone(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A host's create ``fields`` (or a pool's host template) with the server's
        hosted zone when they have no ``dns_zone`` field; ``"dns_zone": null`` keeps
        no name. Admission records the result, so a later ``--dns-zone`` of the server
        changes no host's (or pool member's) name. An air-gapped host has no public
        address to name: it gets no default, rather than a refusal for a zone it never
        asked for."""
        if self.dns_zone is None or "dns_zone" in fields or fields.get("airgap") is True:
            return dict(fields)
        return {**fields, "dns_zone": self.dns_zone}

    def submitted(self, execution: Execution) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()


# -- bodies and errors -------------------------------------------------------------


class _BodyLimit:
    """Refuse a body over ``MAX_BODY_BYTES`` with 413, before any route reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await _too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    error = PayloadTooLargeError(
        f"the request body is over the limit of {MAX_BODY_BYTES // 1024} KiB"
    )
    response = JSONResponse(error_body(error), status_code=http_status(error))
    await response(scope, receive, send)


def _field_of(location: tuple[Any, ...]) -> str:
    """``cpus`` for a body field, ``timeout`` for a query parameter (no ``body.``)."""
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _unreadable_body(why: object) -> str:
    """The message of a body that is not JSON at all (its field is ``body``)."""
    return f"body: the request body cannot be read as JSON ({why})"


def _validation_message(error: dict[str, Any]) -> tuple[str, str]:
    kind = error.get("type", "")
    if kind == "json_invalid":  # its location holds the offset of the bad byte, no field
        return "body", _unreadable_body(error.get("ctx", {}).get("error", error.get("msg")))
    field_name = _field_of(tuple(error.get("loc", ())))
    if kind == "extra_forbidden":
        return field_name, f"{field_name} is not a field of this request"
    if kind == "missing":
        return field_name, f"{field_name} is required"
    message = str(error.get("msg", "is not valid")).rstrip(".")
    message = message[0].lower() + message[1:] if message else message
    if "input" in error and kind != "model_attributes_type":
        from mapt.core import shown

        return field_name, f"{field_name} {shown(error['input'])}: {message}"
    return field_name, f"{field_name}: {message}"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MaptError)
    async def _mapt_error(request: Request, error: MaptError) -> JSONResponse:
        headers = (
            {"WWW-Authenticate": "Token, Bearer"}
            if isinstance(error, AuthenticationError)
            else None
        )
        return JSONResponse(error_body(error), status_code=http_status(error), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        from mapt.core import InputError

        field_name, message = _validation_message(dict(error.errors()[0]))
        problem = InputError(message)
        return JSONResponse(error_body(problem, field=field_name), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        from mapt.core import InputError
        from mapt.service._errors import NotFoundError

        mapped: MaptError
        status = error.status_code
        field_name = None
        if status == 404:
            mapped = NotFoundError(f"no such resource: {request.url.path}")
        elif status == 400:
            # A body FastAPI cannot decode is bad input like any other: 422, not 400.
            mapped = InputError(_unreadable_body(error.detail))
            status, field_name = http_status(mapped), "body"
        else:
            mapped = InputError(f"{request.method} {request.url.path}: {error.detail}")
        body = error_body(mapped, field=field_name)
        return JSONResponse(body, status_code=status, headers=error.headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:
        _log.error(
            "unexpected error on %s %s: %s",
            request.method,
            request.url.path,
            redact("".join(traceback.format_exception(error))),
        )
        return JSONResponse(bug_body(), status_code=500)


# -- authentication ----------------------------------------------------------------


def presented_token(request: Request) -> str:
    """The token in ``Authorization: Token|Bearer <t>`` or ``X-Auth-Token: <t>``."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() not in ("token", "bearer") or not value.strip():
            raise AuthenticationError(
                "the Authorization header must read 'Token <token>' or 'Bearer <token>'"
            )
        return value.strip()
    value = request.headers.get("x-auth-token", "").strip()
    if value:
        return value
    raise AuthenticationError(
        "no token: send 'Authorization: Token <token>' (or Bearer, or X-Auth-Token)",
        hint="mapt serve token create NAME makes one.",
    )


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def reader(request: Request) -> TokenRecord:
    """Any valid token (the dependency of every route but ping and version)."""
    token = presented_token(request)
    service = _service(request)
    record = await anyio.to_thread.run_sync(authenticate, service.database, token)
    request.state.token_name = record.name
    if request.method not in _READ_METHODS and record.read_only:
        raise ForbiddenError(f"token {record.name!r} is read-only: it cannot {request.method}")
    return record


async def writer(request: Request) -> TokenRecord:
    """A token that may change things, whatever the method (e.g. reading a key)."""
    record = await reader(request)
    if record.read_only:
        raise ForbiddenError(f"token {record.name!r} is read-only: this needs a write token")
    return record


Reader = Annotated[TokenRecord, Depends(reader)]
Writer = Annotated[TokenRecord, Depends(writer)]


# -- executions --------------------------------------------------------------------


class ExecutionErrorModel(BaseModel):
    type: str
    message: str
    exit_code: int


class ExecutionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    target: str
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: ExecutionErrorModel | None
    result: Any
    attempts: int
    cancel_requested: bool


class ExecutionAnswer(BaseModel):
    execution: ExecutionModel


class ExecutionList(BaseModel):
    executions: list[ExecutionModel]


WaitQuery = Annotated[bool, Query(description="Answer when the execution ends.")]
TimeoutQuery = Annotated[
    float,
    Query(gt=0, le=MAX_WAIT_SECONDS, description="With wait: answer 202 after this many seconds."),
]


@dataclass(frozen=True)
class WaitOptions:
    """``?wait=true[&timeout=S]`` of a mutating call: answer when the execution ends."""

    wait: bool
    timeout: float

    async def answer(self, service: Service, execution: Execution) -> JSONResponse:
        return await execution_answer(service, execution, wait=self.wait, timeout=self.timeout)


def wait_options(
    wait: WaitQuery = False, timeout: TimeoutQuery = DEFAULT_WAIT_SECONDS
) -> WaitOptions:
    return WaitOptions(wait, timeout)


# The wait parameters of every mutating route, and how such a route answers: 202 and
# its execution (200 once it ended, with wait).
Waited = Annotated[WaitOptions, Depends(wait_options)]
_ACCEPTED: dict[str, Any] = {"status_code": 202, "response_model": ExecutionAnswer}


async def execution_answer(
    service: Service, execution: Execution, *, wait: bool, timeout: float
) -> JSONResponse:
    """The answer to a mutating call: 202 and the execution; with ``wait``, 200 once it
    ended (202 still, when ``timeout`` seconds pass first)."""
    if wait:
        deadline = time.monotonic() + timeout
        while not execution.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(min(_WAIT_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
            execution = await anyio.to_thread.run_sync(service.executions.get, execution.id)
    status = 200 if wait and execution.status.finished else 202
    return JSONResponse(
        {"execution": execution.as_json()},
        status_code=status,
        headers={"Location": f"/v1/executions/{execution.id}"},
    )


def submit(service: Service, name: str, target: str, arguments: dict[str, Any]) -> Execution:
    """Record a new execution and wake the dispatcher (for routers of mutating calls)."""
    execution = service.executions.submit(name, target, arguments)
    service.submitted(execution)
    return execution


def _executions_router() -> APIRouter:
    router = APIRouter(prefix="/v1/executions", tags=["executions"])

    @router.get("", response_model=ExecutionList)
    async def list_executions(
        request: Request,
        _token: Reader,
        include_completed: bool = False,
        target: str | None = None,
    ) -> dict[str, Any]:
        found = await anyio.to_thread.run_sync(
            lambda: _service(request).executions.find(
                include_completed=include_completed, target=target
            )
        )
        return {"executions": [execution.as_json() for execution in found]}

    @router.get("/{execution_id}", response_model=ExecutionAnswer)
    async def get_execution(request: Request, execution_id: str, _token: Reader) -> dict[str, Any]:
        execution = await anyio.to_thread.run_sync(_service(request).executions.get, execution_id)
        return {"execution": execution.as_json()}

    @router.post("/{execution_id}/cancel", **_ACCEPTED)
    async def cancel_execution(
        request: Request, execution_id: str, _token: Writer, waited: Waited
    ) -> JSONResponse:
        service = _service(request)

        def cancel() -> Execution:
            execution = service.executions.cancel(execution_id)
            # Cancelled before it started: its operation never runs to settle its host.
            if execution.status.finished and service.hosts.settle_abandoned():
                service.submitted(execution)  # a cut-short create's cleanup
            return execution

        execution = await anyio.to_thread.run_sync(cancel)
        return await waited.answer(service, execution)

    @router.get(
        "/{execution_id}/log",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def execution_log(
        request: Request, execution_id: str, _token: Reader, follow: bool = False
    ) -> Any:
        """The execution's log, one line per line the worker printed; ``follow``
        streams new lines until the execution ends."""
        service = _service(request)
        lines = await anyio.to_thread.run_sync(service.executions.log, execution_id)
        if not follow:
            return PlainTextResponse("".join(f"{line.text}\n" for line in lines))

        async def stream() -> AsyncIterator[str]:
            last = 0
            batch = lines
            while True:
                for line in batch:
                    last = line.line
                    yield f"{line.text}\n"
                execution = await anyio.to_thread.run_sync(service.executions.get, execution_id)
                batch = await anyio.to_thread.run_sync(
                    functools.partial(service.executions.log, execution_id, after=last)
                )
                if execution.status.finished and not batch:
                    return
                if not batch:
                    await asyncio.sleep(_WAIT_POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")

    return router


# -- hosts -------------------------------------------------------------------------


class HostModel(BaseModel):
    name: str
    state: str
    address: str | None
    # The host's Route53 name (its dns_zone field), which points at `address`.
    dns_name: str | None = None
    username: str | None
    allocation: dict[str, Any] | None
    hourly_price: float | None
    fields: dict[str, Any]
    execution_id: str | None
    created_at: str
    updated_at: str
    expires_at: str | None
    deleted_at: str | None
    last_error: ExecutionErrorModel | None


class HostAnswer(BaseModel):
    host: HostModel


class HostList(BaseModel):
    hosts: list[HostModel]


HostFields = Annotated[
    dict[str, Any],
    Body(
        description="The fields of `mapt aws host create`, named after its flags with "
        "underscores (`os`, `spot`, `cpus`, `memory`, `compute_sizes`, `timeout`, `tags`, "
        "...); the project is `name`.",
        examples=[{"name": "pr-123", "os": "fedora", "spot": True, "cpus": 4, "memory": 16}],
    ),
]


def _host_json(host: ManagedHost) -> dict[str, Any]:
    return host.as_json()


async def host_request(
    request: Request,
    kind: HostRequest,
    name: str | None,
    fields: dict[str, Any] | None,
    waited: WaitOptions,
) -> JSONResponse:
    """What every mutating host route does: the state machine admits the request and
    records its execution (``Hosts.request``), the dispatcher is woken, and the answer
    is the execution (202, or 200 once it ended with ``wait``)."""
    service = _service(request)

    def admit() -> Execution:
        return service.executions.get(service.hosts.request(kind, name, fields))

    execution = await anyio.to_thread.run_sync(admit)
    service.submitted(execution)
    return await waited.answer(service, execution)


def _hosts_router() -> APIRouter:
    router = APIRouter(prefix="/v1/hosts", tags=["hosts"])

    @router.post("", **_ACCEPTED)
    async def create_host(
        request: Request, fields: HostFields, _token: Writer, waited: Waited
    ) -> JSONResponse:
        """Create a host (PENDING, then RUNNING once deployed and ready).

        Without a `dns_zone` field, the host gets the server's (`mapt serve --dns-zone`);
        `"dns_zone": null` asks for no name. It is recorded in the host's fields, so its
        recoveries keep the name.
        """
        fields = _service(request).with_default_zone(fields)
        return await host_request(request, HostRequest.CREATE, None, fields, waited)

    @router.get("", response_model=HostList)
    async def list_hosts(
        request: Request, _token: Reader, include_deleted: bool = False
    ) -> dict[str, Any]:
        found = await anyio.to_thread.run_sync(
            functools.partial(_service(request).hosts.find, include_deleted=include_deleted)
        )
        return {"hosts": [_host_json(host) for host in found]}

    @router.get("/{name}", response_model=HostAnswer)
    async def get_host(request: Request, name: str, _token: Reader) -> dict[str, Any]:
        host = await anyio.to_thread.run_sync(_service(request).hosts.get, name)
        return {"host": _host_json(host)}

    @router.get("/{name}/status")
    async def host_status(request: Request, name: str, _token: Reader) -> dict[str, Any]:
        """The host's stacks as the state describes them now (``mapt aws host list``)."""
        service = _service(request)

        def read() -> dict[str, Any]:
            host = service.hosts.get(name)
            return {"host": _host_json(host), "status": host_state(service.host_services, host)}

        return await anyio.to_thread.run_sync(read)

    @router.get("/{name}/connection")
    async def connection(request: Request, name: str, token: Writer) -> dict[str, Any]:
        """Address, user and private key: needs a write token, and every read is logged."""
        service = _service(request)

        def read() -> dict[str, Any]:
            return host_connection(service.host_services, service.hosts.get(name))

        answer = await anyio.to_thread.run_sync(read)
        for value in (answer["private_key"], answer["password"], answer["bastion_private_key"]):
            if value:
                register_secret(value)
        _log.warning(
            "connection of host %s read by token %s",
            name,
            token.name,
            extra={"audit": {"host": name, "token": token.name, "read": "connection"}},
        )
        return {"connection": answer}

    @router.patch("/{name}", **_ACCEPTED)
    async def update_host(
        request: Request, name: str, fields: HostFields, _token: Writer, waited: Waited
    ) -> JSONResponse:
        """Resize (cpus, memory, compute sizes, disk), retag or change the timeout."""
        return await host_request(request, HostRequest.UPDATE, name, fields, waited)

    @router.post("/{name}/refresh-ip", **_ACCEPTED)
    async def refresh_host_ip(
        request: Request, name: str, _token: Writer, waited: Waited
    ) -> JSONResponse:
        """A new public address: the host's Elastic IP replaced, the old one released;
        the result has `old_address` and `new_address`. A host without an address of its
        own (air-gapped, or spot behind its load balancer) is refused (409)."""
        return await host_request(request, HostRequest.REFRESH_IP, name, None, waited)

    @router.delete("/{name}", **_ACCEPTED)
    async def delete_host(
        request: Request, name: str, _token: Writer, waited: Waited
    ) -> JSONResponse:
        """Destroy the host (DELETING, then DELETED)."""
        return await host_request(request, HostRequest.DELETE, name, None, waited)

    return router


# -- the app -----------------------------------------------------------------------


def create_app(service: Service) -> FastAPI:
    """The FastAPI app over ``service``; its lifespan starts and stops the dispatcher."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service.dispatcher is not None:
            service.dispatcher.start()
        _log.info("serving; records in %s", service.database.shown())
        try:
            yield
        finally:
            if service.dispatcher is not None:
                _log.info("stopping: workers hand their executions back")
                await anyio.to_thread.run_sync(service.dispatcher.stop)
            _log.info("stopped")

    app = FastAPI(
        title="mapt",
        version=__version__,
        description="Short-lived test machines on AWS, spot capacity first: the control plane.",
        lifespan=lifespan,
    )
    app.state.service = service
    _install_error_handlers(app)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        started = time.monotonic()
        response = await call_next(request)
        _log.info(
            "%s %s -> %s",
            request.method,
            request.url.path,
            response.status_code,
            extra={
                "http": {
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "token": getattr(request.state, "token_name", None),
                }
            },
        )
        return response

    app.add_middleware(_BodyLimit)

    @app.get("/v1/ping", tags=["server"])
    async def ping() -> dict[str, str]:
        """Answers without a token: is the server up?"""
        return {"ping": "pong"}

    @app.get("/v1/version", tags=["server"])
    async def version() -> dict[str, str]:
        """Answers without a token: the server's mapt version."""
        return {"version": __version__}

    app.include_router(_executions_router())
    app.include_router(_hosts_router())
    from mapt.service._costs_api import costs_router
    from mapt.service._pool_routes import pools_router  # they build on this module

    app.include_router(costs_router())
    app.include_router(pools_router())
    for router in service.routers:
        app.include_router(router)
    return app
