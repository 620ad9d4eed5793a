"""``Client(url, token)``: the HTTP API of ``mapt serve`` as typed calls (httpx).

The token travels in the ``Authorization: Token`` header only: never in a URL, a log
line or a message (it is registered for redaction too). Every error the server
answers becomes the ``mapt.core`` error the local command raises (``server_error``);
a server that cannot be reached, or answers what is not mapt's JSON, is an
``OperationError`` naming the URL. Mutating calls are executions: with ``wait`` they
return once the execution ended and raise its error when it failed.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from mapt import __version__
from mapt._api import HostState
from mapt.client._errors import server_error
from mapt.client._records import Execution, Host, host_connection, host_status
from mapt.core import InputError, OperationError, register_secret, shown, without_password
from mapt.hosts import HostConnection, HostStatus

DEFAULT_TIMEOUT = 60.0
# Longest the server holds one ``?wait=true`` answer (``MAX_WAIT_SECONDS`` of the service).
_SERVER_WAIT_LIMIT = 3600.0
_POLL_START, _POLL_MAX = 0.2, 2.0

_Read = TypeVar("_Read")


def check_server_url(url: str) -> str:
    """``url`` without a trailing slash, when it is an http(s) URL without credentials.

    A message shows the URL with its password masked (``without_password``).
    """
    text = url.strip()
    echoed = shown(without_password(text))
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise InputError(f"server URL {echoed} is not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"server URL {echoed} is not an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InputError(
            f"server URL {echoed} holds credentials (user:password@): give the URL without them"
        )
    if parts.query or parts.fragment:
        raise InputError(f"server URL {echoed} has a query or fragment: give the base URL")
    return text.rstrip("/")


def check_token(token: str, *, what: str = "the API token") -> str:
    """``token`` when a header carries it as it is: printable ASCII without whitespace
    around it. Else bad input saying ``what`` is wrong, never the token: httpx could not
    encode another character (a traceback), and a space around it is refused on the wire
    (reported as an unreachable server)."""
    if not token:
        problem = "is empty"
    elif token != token.strip():
        problem = "starts or ends with whitespace"
    elif not (token.isascii() and token.isprintable()):
        problem = "holds a character that is not printable ASCII"
    else:
        return token
    raise InputError(f"{what} {problem}", field="token")


class Client:
    """The API of the ``mapt serve`` at ``url``, with an API ``token``.

    ``client.hosts`` and ``client.executions`` hold the calls; ``ping`` and ``version``
    need no token. Use it as a context manager (or call ``close``) to free its
    connections. ``transport`` is httpx's, for callers that route the calls themselves.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = check_server_url(url)
        headers = {"User-Agent": f"mapt/{__version__}", "Accept": "application/json"}
        if token is not None:
            register_secret(check_token(token))
            headers["Authorization"] = f"Token {token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self.hosts = Hosts(self)
        self.executions = Executions(self)
        self.pools = Pools(self, self.hosts)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def ping(self) -> bool:
        """Whether the server answers (``GET /v1/ping``, no token needed)."""
        return self._json("GET", "/v1/ping", read=lambda document: document.get("ping") == "pong")

    def version(self) -> str:
        """The server's mapt version (``GET /v1/version``, no token needed)."""
        return self._json("GET", "/v1/version", read=lambda document: str(document["version"]))

    # -- the wire ---------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        *,
        read: Callable[[dict[str, Any]], _Read],
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> _Read:
        """The JSON answer of ``method path`` as ``read`` makes it (its records); the
        server's error, raised, otherwise.

        Every answer is read into its records here: one that cannot be (a key missing,
        a state or a time that is none, as in another server's JSON) is the
        ``OperationError`` naming the URL, not a ``KeyError`` from deep in a record.
        """
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        with self._answer(method, path, params=params, body=body, **extra) as answer:
            answer.read()
            document = self._document(answer)
            try:
                return read(document)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                raise self._not_mapts(answer) from None

    @contextmanager
    def _answer(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        """The streamed answer of ``method path`` when it succeeded (2xx)."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        request = self._http.build_request(method, path, params=_query(params), json=body, **extra)
        where = f"{method} {self.url}{path}"
        try:
            answer = self._http.send(request, stream=True)
        except httpx.TimeoutException:
            raise OperationError(f"{where}: the server did not answer in time") from None
        except httpx.HTTPError as error:
            raise OperationError(
                f"cannot reach the mapt server: {where}: {error}",
                hint="Is `mapt serve` running there? Check --server (MAPT_SERVER).",
            ) from None
        try:
            if answer.is_error:
                answer.read()
                raise self._error(answer, where)
            yield answer
        except httpx.HTTPError as error:
            raise OperationError(f"{where}: the answer broke off: {error}") from None
        finally:
            answer.close()

    def _document(self, answer: httpx.Response) -> dict[str, Any]:
        try:
            document = answer.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise self._not_mapts(answer)
        return document

    def _not_mapts(self, answer: httpx.Response) -> OperationError:
        return OperationError(
            f"{answer.request.method} {answer.request.url}: the answer is not mapt's "
            f"JSON (HTTP {answer.status_code}); is this a mapt server?"
        )

    def _error(self, answer: httpx.Response, where: str) -> Exception:
        try:
            body = answer.json()
        except ValueError:
            body = None
        reason = answer.reason_phrase or "error"
        return server_error(
            answer.status_code,
            body if isinstance(body, dict) else None,
            fallback=f"{where}: HTTP {answer.status_code} {reason}",
        )


class Executions:
    """``/v1/executions``: the server's durable requests, their logs, cancelling."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, execution_id: str) -> Execution:
        return self._client._json(
            "GET", f"/v1/executions/{_segment(execution_id)}", read=_execution
        )

    def list(
        self, *, include_completed: bool = False, target: str | None = None
    ) -> list[Execution]:
        """Executions not finished yet (with ``include_completed``, all), oldest first;
        ``target`` keeps those of one host."""
        params: dict[str, Any] = {"include_completed": include_completed, "target": target}
        return self._client._json(
            "GET",
            "/v1/executions",
            params=params,
            read=lambda document: [Execution.from_json(e) for e in document["executions"]],
        )

    def logs(self, execution_id: str, *, follow: bool = False) -> Iterator[str]:
        """The execution's progress lines (the lines the local command prints); with
        ``follow``, new ones as they come, until the execution ends."""
        path = f"/v1/executions/{_segment(execution_id)}/log"
        # Following waits as long as the execution runs: no read timeout.
        timeout = httpx.Timeout(DEFAULT_TIMEOUT, read=None) if follow else None
        with self._client._answer(
            "GET", path, params={"follow": follow}, timeout=timeout
        ) as answer:
            yield from answer.iter_lines()

    def cancel(
        self, execution_id: str, *, wait: bool = False, timeout: float | None = None
    ) -> Execution:
        """Ask the execution to stop; with ``wait``, the execution once it ended."""
        path = f"/v1/executions/{_segment(execution_id)}/cancel"
        execution = self._client._json("POST", path, read=_execution)
        return self.wait(execution.id, timeout=timeout) if wait else execution

    def wait(self, execution_id: str, *, timeout: float | None = None) -> Execution:
        """The execution once it ended (succeeded, failed or cancelled), polled; after
        ``timeout`` seconds (None: no limit), an ``OperationError``."""
        return self._wait_until(execution_id, _deadline(timeout), timeout)

    def _wait_until(
        self, execution_id: str, deadline: float | None, timeout: float | None
    ) -> Execution:
        """``wait`` until ``deadline`` (``time.monotonic``; None: none), for a wait of
        ``timeout`` seconds in all that may have begun before (a held answer's)."""
        pause = _POLL_START
        while True:
            execution = self.get(execution_id)
            if execution.finished:
                return execution
            if deadline is not None and time.monotonic() >= deadline:
                raise OperationError(
                    f"execution {execution.id} ({execution.name} {execution.target}) is still "
                    f"{execution.status.value} after {timeout:g}s",
                    hint=f"mapt execution get {execution.id} shows it later.",
                )
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 1.5, _POLL_MAX)


class Hosts:
    """``/v1/hosts``: managed hosts, created, resized and deleted as executions."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self, *, wait: bool = True, wait_timeout: float | None = None, **fields: Any
    ) -> Execution:
        """Create a host from the fields of ``mapt aws host create`` (``name``, ``os``,
        ``spot``, ``cpus``, ``timeout``...). With ``wait`` (at most ``wait_timeout``
        seconds), the succeeded execution (its ``result`` is the host's record, see
        ``host_record``), or its error raised; without, the pending execution."""
        return self._execution("POST", "/v1/hosts", fields, wait=wait, timeout=wait_timeout)

    def update(
        self, name: str, *, wait: bool = True, wait_timeout: float | None = None, **fields: Any
    ) -> Execution:
        """Resize (cpus, memory, compute sizes, disk), retag or change the ``timeout``
        (the host's lifetime; ``wait_timeout`` bounds the wait)."""
        return self._execution("PATCH", _host_path(name), fields, wait=wait, timeout=wait_timeout)

    def delete(
        self, name: str, *, wait: bool = True, wait_timeout: float | None = None
    ) -> Execution:
        """Destroy the host (DELETING, then DELETED)."""
        return self._execution("DELETE", _host_path(name), None, wait=wait, timeout=wait_timeout)

    def refresh_ip(
        self, name: str, *, wait: bool = True, wait_timeout: float | None = None
    ) -> Execution:
        """A new public address for the host, the old one released; the result has
        ``old_address`` and ``new_address`` (``address_change`` reads it)."""
        return self._execution(
            "POST", f"{_host_path(name)}/refresh-ip", None, wait=wait, timeout=wait_timeout
        )

    def list(self, *, include_deleted: bool = False) -> list[Host]:
        return self._client._json(
            "GET", "/v1/hosts", params={"include_deleted": include_deleted}, read=_hosts
        )

    def get(self, name: str) -> Host:
        return self._client._json(
            "GET", _host_path(name), read=lambda document: Host.from_json(document["host"])
        )

    def status(self, name: str) -> tuple[Host, HostStatus]:
        """The host's record, and its stacks as the state describes them now."""
        return self._client._json(
            "GET",
            f"{_host_path(name)}/status",
            read=lambda document: (
                Host.from_json(document["host"]),
                host_status(document["status"]),
            ),
        )

    def costs(
        self,
        name: str,
        *,
        start: date | None = None,
        end: date | None = None,
        detail: bool = False,
    ) -> dict[str, Any]:
        """What the host cost over the days [start, end], in the spot-api's document
        (``costs``, ``running``, ``savings``); ``detail`` adds its intervals and the
        list-priced network resources."""
        return self._client._json(
            "GET", f"{_host_path(name)}/costs", params=_cost_params(start, end, detail), read=dict
        )

    def connection(self, name: str) -> HostConnection:
        """Address, user and private key of a RUNNING host (a write token; logged)."""
        return self._client._json(
            "GET",
            f"{_host_path(name)}/connection",
            read=lambda document: host_connection(document["connection"]),
        )

    def _execution(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        wait: bool,
        timeout: float | None,
        params: Mapping[str, Any] | None = None,
    ) -> Execution:
        query = dict(params or {})
        read_timeout = None
        # One deadline for the held answer and the polling after it: ``timeout`` in all.
        deadline = _deadline(timeout)
        if wait:
            # The server holds the answer up to its limit; past it, we poll.
            held = _SERVER_WAIT_LIMIT if timeout is None else min(timeout, _SERVER_WAIT_LIMIT)
            query.update(wait=True, timeout=held)
            read_timeout = held + DEFAULT_TIMEOUT
        execution = self._client._json(
            method, path, params=query, body=body, timeout=read_timeout, read=_execution
        )
        if not wait:
            return execution
        if not execution.finished:
            execution = self._client.executions._wait_until(execution.id, deadline, timeout)
        return execution.raise_for_error()


def _deadline(timeout: float | None) -> float | None:
    """The ``time.monotonic`` at which a wait of ``timeout`` seconds ends (None: never)."""
    return None if timeout is None else time.monotonic() + timeout


def _execution(document: Mapping[str, Any]) -> Execution:
    return Execution.from_json(document["execution"])


def _hosts(document: Mapping[str, Any]) -> list[Host]:
    return [Host.from_json(entry) for entry in document["hosts"]]


def _pool(document: Mapping[str, Any]) -> dict[str, Any]:
    return dict(document["pool"])


def _segment(value: str) -> str:
    """``value`` as one path segment (a name cannot reach another route)."""
    if not value:
        raise InputError("an empty name or id cannot be asked for")
    return quote(value, safe="")


def _host_path(name: str) -> str:
    return f"/v1/hosts/{_segment(name)}"


def _query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Query parameters as the server reads them: booleans ``true``/``false``, Nones out."""
    if params is None:
        return None
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for key, value in params.items()
        if value is not None
    }


@dataclass(frozen=True)
class PoolLease:
    """A lease of a pool member: the lease's JSON, the member, and how to log in."""

    lease: Mapping[str, Any]
    host: Host
    connection: HostConnection

    @property
    def id(self) -> str:
        return str(self.lease["id"])


class Pools:
    """``/v1/pools``: pools of warm hosts, their members (add, remove) and leases.

    Pools are answered as the server's JSON documents (``specs/features/pools.md``);
    member changes are executions, as host changes are.
    """

    def __init__(self, client: Client, hosts: Hosts) -> None:
        self._client = client
        self._hosts = hosts

    def create(
        self,
        name: str,
        *,
        target: int,
        host: Mapping[str, Any],
        minimum: int = 0,
        maximum: int | None = None,
        strategy: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        capacity = {"target": target, "minimum": minimum, "maximum": maximum}
        body = {
            "name": name,
            "capacity": {key: value for key, value in capacity.items() if value is not None},
            "host": dict(host),
            "strategy": dict(strategy or {}),
        }
        return self._client._json("POST", "/v1/pools", body=body, read=_pool)

    def list(self) -> builtins.list[dict[str, Any]]:
        return self._client._json(
            "GET", "/v1/pools", read=lambda document: [dict(p) for p in document["pools"]]
        )

    def get(self, name: str) -> dict[str, Any]:
        """The pool with its members counted (``pool``) and listed (``hosts``)."""
        return self._client._json("GET", _pool_path(name), read=dict)

    def update(
        self,
        name: str,
        *,
        capacity: Mapping[str, int] | None = None,
        host: Mapping[str, Any] | None = None,
        strategy: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            key: dict(value)
            for key, value in (("capacity", capacity), ("host", host), ("strategy", strategy))
            if value is not None
        }
        return self._client._json("PATCH", _pool_path(name), body=body, read=_pool)

    def delete(self, name: str) -> dict[str, Any]:
        """Drain the pool (leased members go once released or expired)."""
        return self._client._json("DELETE", _pool_path(name), read=_pool)

    def costs(
        self,
        name: str,
        *,
        start: date | None = None,
        end: date | None = None,
        detail: bool = False,
    ) -> dict[str, Any]:
        """What the pool's members cost while they served it (the document of
        ``Hosts.costs``)."""
        return self._client._json(
            "GET", f"{_pool_path(name)}/costs", params=_cost_params(start, end, detail), read=dict
        )

    def hosts(self, name: str) -> builtins.list[Host]:
        return self._client._json("GET", f"{_pool_path(name)}/hosts", read=_hosts)

    def add(
        self, name: str, count: int = 1, *, wait: bool = True, wait_timeout: float | None = None
    ) -> Execution:
        """Add ``count`` members (the target rises; never above maximum)."""
        return self._hosts._execution(
            "PUT", f"{_pool_path(name)}/hosts", None, wait=wait, timeout=wait_timeout,
            params={"count": count},
        )  # fmt: skip

    def remove(
        self,
        name: str,
        *,
        host: str | None = None,
        ip: str | None = None,
        wait: bool = True,
        wait_timeout: float | None = None,
    ) -> Execution:
        """Remove one idle member (``host`` or ``ip`` names it; the target drops by one)."""
        return self._hosts._execution(
            "DELETE", f"{_pool_path(name)}/hosts", None, wait=wait, timeout=wait_timeout,
            params={"host": host, "ip": ip},
        )  # fmt: skip

    def refresh_ip(
        self,
        name: str,
        address: str = "all",
        *,
        wait: bool = True,
        wait_timeout: float | None = None,
    ) -> Execution:
        """New public addresses (the old ones released) for every idle member, or for
        the member at ``address``."""
        return self._hosts._execution(
            "PATCH", f"{_pool_path(name)}/hosts", {"refresh_ip": address}, wait=wait,
            timeout=wait_timeout,
        )  # fmt: skip

    def lease(
        self,
        name: str,
        *,
        ttl: str,
        holder: str,
        allow_cold_start: bool = False,
        wait: float = 0.0,
        start_timeout: float | None = None,
    ) -> PoolLease:
        """Lease an idle member (waiting up to ``wait`` seconds for one; a cold start,
        when allowed, is polled until it runs, at most ``start_timeout`` seconds)."""
        body = {"ttl": ttl, "holder": holder, "allow_cold_start": allow_cold_start, "wait": wait}
        answer = self._client._json(
            "POST",
            f"{_pool_path(name)}/leases",
            body=body,
            timeout=wait + DEFAULT_TIMEOUT,
            read=_LeaseAnswer.from_json,
        )
        deadline = _deadline(start_timeout)
        pause = _POLL_START
        while (leased := _leased(answer, name)) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise OperationError(
                    f"lease {answer.id}: host {answer.member} is not running "
                    f"after {start_timeout:g}s",
                    hint=f"mapt pool release {name} {answer.id} returns it.",
                )
            time.sleep(pause)
            pause = min(pause * 1.5, _POLL_MAX)
            answer = self._client._json(
                "GET",
                f"{_pool_path(name)}/leases/{_segment(answer.id)}",
                read=_LeaseAnswer.from_json,
            )
        return leased

    def release(self, name: str, lease_id: str) -> dict[str, Any]:
        """Return the member (recycled per the pool's strategy): the lease and the
        destroy's execution (None when the member is kept)."""
        return self._client._json(
            "DELETE", f"{_pool_path(name)}/leases/{_segment(lease_id)}", read=dict
        )


@dataclass(frozen=True)
class _LeaseAnswer:
    """An answer about a lease, read: the lease, and while it is active its member (and
    the member's connection once it runs)."""

    lease: dict[str, Any]
    id: str
    state: str
    member: str
    host: Host | None  # None once the lease ended: the answer is the lease alone
    connection: HostConnection | None

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> _LeaseAnswer:
        lease = dict(document["lease"])
        state = str(lease["state"])
        connection = document.get("connection")
        return cls(
            lease=lease,
            id=str(lease["id"]),
            state=state,
            member=str(lease["host"]),
            host=Host.from_json(document["host"]) if state == "active" else None,
            connection=None if connection is None else host_connection(connection),
        )


def _leased(answer: _LeaseAnswer, pool: str) -> PoolLease | None:
    """The lease once its member runs; None while it starts. Raised: the lease ended,
    or the member's create failed (DELETED or ERROR: the lease itself stays active
    until its ttl, so waiting for it would poll that long), as the member's
    ``last_error`` with that error's exit code (4 for no capacity)."""
    host = answer.host
    if host is None:
        raise OperationError(f"lease {answer.id} ended ({answer.state})")
    if answer.connection is not None:
        return PoolLease(lease=answer.lease, host=host, connection=answer.connection)
    if host.state not in (HostState.DELETED, HostState.ERROR):
        return None
    failed = f"lease {answer.id}: host {host.name} did not start ({host.state.value})"
    hint = f"mapt pool release {pool} {answer.id} ends the lease."
    if host.last_error is None:
        raise OperationError(failed, hint=hint)
    raise replace(host.last_error, message=f"{failed}: {host.last_error.message}").as_error(
        hint=hint
    )


def _cost_params(start: date | None, end: date | None, detail: bool) -> dict[str, Any]:
    return {
        "start": None if start is None else start.isoformat(),
        "end": None if end is None else end.isoformat(),
        "detail": detail,
    }


def _pool_path(name: str) -> str:
    return f"/v1/pools/{_segment(name)}"
