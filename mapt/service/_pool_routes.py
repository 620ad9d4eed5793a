"""``/v1/pools``: pools of warm hosts, their members (the FaaSpot verbs) and leases.

The routes read the request and call ``mapt.service._pools.Pools``; no decision is
made here. Member changes are executions (202, ``Location``, ``?wait``) as host
changes are; a lease answers at once with the member's connection (201), or 202 while
a cold-started member boots, or 423 when no member can be had within ``wait``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mapt.core import StateLockedError, get_logger, register_secret
from mapt.pools import Capacity
from mapt.service._app import (
    MAX_WAIT_SECONDS,
    Reader,
    Service,
    Waited,
    WaitOptions,
    Writer,
)
from mapt.service._costs_api import CostDays, DetailQuery, cost_answer
from mapt.service._hosts import host_connection
from mapt.service._pools import Lease, Pools, Strategy
from mapt.service._states import HostState

_log = get_logger("mapt.service.http")
_LEASE_POLL_SECONDS = 0.2


class CapacityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: int
    minimum: int = 0
    maximum: int | None = Field(default=None, description="Default: the target.")


class CapacityPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: int | None = None
    minimum: int | None = None
    maximum: int | None = None


class StrategyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fallback_on_demand: bool = False
    max_lifetime: str | None = Field(default=None, examples=["12h"])
    recycle: Literal["replace", "keep"] = "replace"


class StrategyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fallback_on_demand: bool | None = None
    max_lifetime: str | None = None
    recycle: Literal["replace", "keep"] | None = None


class PoolBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    capacity: CapacityBody
    host: dict[str, Any] = Field(
        description="The fields of POST /v1/hosts, without the name (the pool names members)."
    )
    strategy: StrategyBody = StrategyBody()


class PoolPatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capacity: CapacityPatch | None = None
    host: dict[str, Any] | None = None
    strategy: StrategyPatch | None = None


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_ip: str = Field(description='"all", or the public address of one member.')


class LeaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl: str = Field(examples=["30m"], description="How long the holder keeps the member.")
    holder: str = Field(min_length=1, max_length=128, examples=["ci/run-42"])
    allow_cold_start: bool = False
    wait: float = Field(
        default=0.0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds to wait for a member to become idle before answering 423.",
    )


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _pools(request: Request) -> Pools:
    return _service(request).pools


async def _in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


async def _submitted(request: Request, execution_id: str, waited: WaitOptions) -> JSONResponse:
    service = _service(request)
    execution = await _in_thread(service.executions.get, execution_id)
    service.submitted(execution)
    return await waited.answer(service, execution)


def pools_router() -> APIRouter:
    router = APIRouter(prefix="/v1/pools", tags=["pools"])

    @router.post("", status_code=201)
    async def create_pool(request: Request, body: PoolBody, _token: Writer) -> dict[str, Any]:
        """Create a pool; the leader's convergence loop launches its members.

        A `host` template without a `dns_zone` field gets the server's
        (`mapt serve --dns-zone`), as `POST /v1/hosts` does, recorded in the pool: each
        member is named `<member>.<zone>`. `"dns_zone": null` asks for no name.
        """
        capacity = body.capacity
        wanted = Capacity(
            capacity.target,
            capacity.minimum,
            capacity.target if capacity.maximum is None else capacity.maximum,
        )
        strategy = Strategy(**body.strategy.model_dump())
        template = _service(request).with_default_zone(body.host)
        pools = _pools(request)
        pool = await _in_thread(pools.create, body.name, wanted, template, strategy)
        return {"pool": pool.as_json([])}

    @router.get("")
    async def list_pools(request: Request, _token: Reader) -> dict[str, Any]:
        pools = _pools(request)

        def read() -> list[dict[str, Any]]:
            return [pool.as_json(pools.members(pool.name)) for pool in pools.find()]

        return {"pools": await _in_thread(read)}

    @router.get("/{name}")
    async def get_pool(request: Request, name: str, _token: Reader) -> dict[str, Any]:
        """The pool, its members counted by state (leased, idle), and its hosts."""
        pools = _pools(request)

        def read() -> dict[str, Any]:
            pool = pools.get(name)
            members = pools.members(name)
            return {"pool": pool.as_json(members), "hosts": [m.as_json() for m in members]}

        return dict(await _in_thread(read))

    @router.patch("/{name}")
    async def update_pool(
        request: Request, name: str, body: PoolPatchBody, _token: Writer
    ) -> dict[str, Any]:
        """Change the capacity, the host template (members made from the old one are
        replaced once idle) or the strategy."""
        capacity = None if body.capacity is None else body.capacity.model_dump(exclude_none=True)
        strategy = None if body.strategy is None else body.strategy.model_dump(exclude_unset=True)
        template = None if body.host is None else _service(request).with_default_zone(body.host)
        pools = _pools(request)
        pool = await _in_thread(
            pools.update, name, capacity=capacity, host=template, strategy=strategy
        )
        return {"pool": pool.as_json(await _in_thread(pools.members, name))}

    @router.delete("/{name}", status_code=202)
    async def delete_pool(request: Request, name: str, _token: Writer) -> dict[str, Any]:
        """Drain the pool: idle members go now, leased ones when released or expired."""
        pools = _pools(request)
        pool = await _in_thread(pools.delete, name)
        return {"pool": pool.as_json(await _in_thread(pools.members, name))}

    # -- members: the FaaSpot verbs ----------------------------------------------------

    @router.get("/{name}/hosts")
    async def list_members(request: Request, name: str, _token: Reader) -> dict[str, Any]:
        pools = _pools(request)

        def read() -> list[dict[str, Any]]:
            pools.get(name)
            return [member.as_json() for member in pools.members(name)]

        return {"hosts": await _in_thread(read)}

    @router.put("/{name}/hosts", status_code=202)
    async def add_members(
        request: Request,
        name: str,
        _token: Writer,
        waited: Waited,
        count: Annotated[int, Query(ge=1)] = 1,
    ) -> JSONResponse:
        """Add ``count`` members (the target rises with them; never above maximum)."""
        execution_id = await _in_thread(_pools(request).add, name, count)
        return await _submitted(request, execution_id, waited)

    @router.delete("/{name}/hosts", status_code=202)
    async def remove_member(
        request: Request,
        name: str,
        _token: Writer,
        waited: Waited,
        host: str | None = None,
        ip: str | None = None,
    ) -> JSONResponse:
        """Remove one idle member (``host`` or ``ip`` names it); the target drops by one."""
        execution_id = await _in_thread(_pools(request).remove, name, host=host, ip=ip)
        return await _submitted(request, execution_id, waited)

    @router.get("/{name}/costs")
    async def pool_costs(
        request: Request, name: str, _token: Reader, days: CostDays, detail: DetailQuery = False
    ) -> dict[str, Any]:
        """What the pool's members cost while they served it, on spot against on
        demand, over the days asked (the spot-api's document, as for a host)."""
        await _in_thread(_pools(request).get, name)
        return await cost_answer(request, lambda book: book.pool(name, *days), detail)

    @router.patch("/{name}/hosts", status_code=202)
    async def refresh_member_addresses(
        request: Request,
        name: str,
        body: RefreshBody,
        _token: Writer,
        waited: Waited,
    ) -> JSONResponse:
        """``{"refresh_ip": "all" | "<address>"}``: new public addresses (the old ones
        released) for the idle members, or the member at that address."""
        execution_id = await _in_thread(_pools(request).refresh_ip, name, body.refresh_ip)
        return await _submitted(request, execution_id, waited)

    # -- leases ------------------------------------------------------------------------

    async def _lease_answer(request: Request, lease: Lease, token: str) -> JSONResponse:
        """201 with the member's connection once it is RUNNING; 202 while it boots."""
        service = _service(request)

        def read() -> tuple[Any, dict[str, Any] | None]:
            host = service.hosts.get(lease.host)
            if host.state is not HostState.RUNNING:
                return host, None
            return host, host_connection(service.host_services, host)

        host, connection = await _in_thread(read)
        document: dict[str, Any] = {"lease": lease.as_json(), "host": host.as_json()}
        if connection is None:
            return JSONResponse(document, status_code=202)
        for value in (connection["private_key"], connection["password"]):
            if value:
                register_secret(value)
        _log.warning(
            "connection of host %s read by token %s for lease %s",
            lease.host,
            token,
            lease.id,
            extra={"audit": {"host": lease.host, "token": token, "read": "connection"}},
        )
        document["connection"] = connection
        return JSONResponse(document, status_code=201)

    @router.post("/{name}/leases", status_code=201)
    async def lease_member(
        request: Request, name: str, body: LeaseBody, token: Writer
    ) -> JSONResponse:
        """Lease an idle RUNNING member with its connection; or wait up to ``wait``
        seconds for one; or cold-start one when allowed and below maximum (202 until it
        runs: GET the lease). No member to be had: 423, exit 3 (retry later)."""
        pools = _pools(request)
        deadline = time.monotonic() + body.wait

        def attempt(waited: bool) -> Lease | None:
            return pools.lease(
                name,
                ttl=body.ttl,
                holder=body.holder,
                allow_cold_start=body.allow_cold_start,
                waited=waited,
            )

        lease = await _in_thread(attempt, False)
        if lease is None and body.wait:
            with _service(request).lease_waits.waiting(name):
                while lease is None and time.monotonic() < deadline:
                    await asyncio.sleep(
                        min(_LEASE_POLL_SECONDS, max(deadline - time.monotonic(), 0))
                    )
                    lease = await _in_thread(attempt, True)
        if lease is None:
            pool = await _in_thread(pools.get, name)
            raise StateLockedError(
                f"pool {name!r} has no idle member"
                + (f" after {body.wait:g}s" if body.wait else "")
                + f" (maximum {pool.capacity.maximum}, all taken or starting)",
                hint="Retry later, pass wait (seconds), or allow_cold_start below maximum.",
            )
        _wake(request)  # a cold start's create waits for a worker
        return await _lease_answer(request, lease, token.name)

    @router.get("/{name}/leases/{lease_id}")
    async def get_lease(request: Request, name: str, lease_id: str, token: Writer) -> JSONResponse:
        """The lease, with its member's connection once RUNNING (201; 202 before)."""
        lease = await _in_thread(_pools(request).get_lease, name, lease_id)
        if lease.state != "active":
            return JSONResponse({"lease": lease.as_json()}, status_code=200)
        return await _lease_answer(request, lease, token.name)

    @router.delete("/{name}/leases/{lease_id}")
    async def release_lease(
        request: Request, name: str, lease_id: str, _token: Writer
    ) -> dict[str, Any]:
        """Return the member: replaced (destroyed, a fresh one launched) or kept idle,
        per the pool's strategy; ``execution`` is the destroy, when there is one."""
        service = _service(request)
        lease, execution_id = await _in_thread(_pools(request).release, name, lease_id)
        execution = None
        if execution_id is not None:
            found = await _in_thread(service.executions.get, execution_id)
            service.submitted(found)
            execution = found.as_json()
        return {"lease": lease.as_json(), "execution": execution}

    return router


def _wake(request: Request) -> None:
    dispatcher = _service(request).dispatcher
    if dispatcher is not None:
        dispatcher.wake()
