"""Pools of warm hosts and their leases: the records, the convergence pass, the verbs.

A pool is a row with a capacity ``{target, minimum, maximum}``, a host template (the
request of ``POST /v1/hosts`` without its name) and a strategy. Its members are
ordinary managed hosts (``mapt.service._hosts``) whose record names the pool and the
template version they were made from; they are made and destroyed by the same
``hosts.create`` / ``hosts.delete`` executions. What to launch or remove is decided by
``mapt.pools.plan``; this module only reads the records, asks the planner, and carries
the plan out through ``Hosts.request_in``.

A lease is a row naming one RUNNING member and its holder until ``expires_at``. A
partial unique index (one ``active`` lease per host) makes the database itself refuse a
second lease of a member, on SQLite and PostgreSQL alike; removing, changing or
readdressing a member checks, in the transaction that admits it (the host row locked),
that no lease holds it (``Hosts.request_in``, the door of the host routes too).
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from mapt.core import (
    InputError,
    Interrupted,
    MaptError,
    OperationError,
    StateLockedError,
    get_logger,
    parse_duration,
)
from mapt.hosts import BreakerPolicy, OpenBreaker, Place
from mapt.pools import (
    Capacity,
    CapacityError,
    Member,
    MemberState,
    Plan,
    pick_idle,
    plan,
    spread,
)
from mapt.service._database import Database
from mapt.service._errors import ConflictError, NotFoundError
from mapt.service._executions import Executions, ExecutionStatus
from mapt.service._hosts import (
    HOST_WORKER_MODULES,
    RECOVER,
    REPLACE,
    Hosts,
    ManagedHost,
    _host,
    check_create_fields,
    run_create,
    run_refresh_ip,
)
from mapt.service._leader import LeaderContext, LeaderTask
from mapt.service._schema import executions, hosts, leases, pools
from mapt.service._states import HostRequest, HostState
from mapt.service._workers import ExecutionContext, Operation, OperationFunction

# Members are named ``<pool>-<6 hex>``: a pool's name leaves room for that in a host's.
POOL_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
RECYCLE = ("replace", "keep")
MAX_LEASE_TTL = timedelta(days=7)
# A lease that loses a race for a member (the unique index refused it) tries again.
_LEASE_ATTEMPTS = 5
ACTIVE, DRAINING = "ACTIVE", "DRAINING"
# What one convergence pass may launch per pool and minute, unless configured.
DEFAULT_LAUNCHES_PER_MINUTE = 10


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def check_pool_name(name: str) -> str:
    if not POOL_NAME.fullmatch(name):
        raise InputError(
            f"name {name!r} is not a pool name: lowercase letters, digits and '-', "
            "starting with a letter, at most 40 characters"
        )
    return name


@dataclass(frozen=True)
class Strategy:
    """How members are made and recycled: on-demand when spot has no capacity, the
    longest an idle member lives, and whether a returned member is replaced or kept."""

    fallback_on_demand: bool = False
    max_lifetime: str | None = None
    recycle: str = "replace"

    def __post_init__(self) -> None:
        if self.recycle not in RECYCLE:
            raise InputError(f"strategy.recycle {self.recycle!r} must be replace or keep")
        self.lifetime()

    def lifetime(self) -> timedelta | None:
        if self.max_lifetime is None:
            return None
        return parse_duration(self.max_lifetime, flag="strategy.max_lifetime")

    def as_json(self) -> dict[str, Any]:
        return {
            "fallback_on_demand": self.fallback_on_demand,
            "max_lifetime": self.max_lifetime,
            "recycle": self.recycle,
        }


@dataclass(frozen=True)
class Lease:
    id: str
    pool: str
    host: str
    holder: str
    state: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pool": self.pool,
            "host": self.host,
            "holder": self.holder,
            "state": self.state,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "ended_at": _iso(self.ended_at),
        }


@dataclass(frozen=True)
class PoolMember:
    """A member host, the template it was made from, and the lease that holds it."""

    host: ManagedHost
    template: int
    recycle: bool
    lease: Lease | None
    # ERROR with its replacement or recovery still to finish (``Member.repairing``).
    repairing: bool = False

    @property
    def zone(self) -> str | None:
        """Where it runs (its allocation's zone), else where it is pinned to run: a
        member still being made counts in its zone, so a pass never fills one twice."""
        allocation = (self.host.record or {}).get("allocation") or {}
        zone = allocation.get("availability_zone") or self.host.fields.get("availability_zone")
        return None if zone is None else str(zone)

    @property
    def address(self) -> str | None:
        outputs = (self.host.record or {}).get("outputs") or {}
        address = outputs.get("host")
        return None if address is None else str(address)

    def planned(self) -> Member:
        return Member(
            name=self.host.name,
            state=MemberState(self.host.state.value),
            created_at=self.host.created_at,
            leased=self.lease is not None,
            zone=self.zone,
            template=self.template,
            recycle=self.recycle,
            repairing=self.repairing,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            **self.host.as_json(),
            "template": self.template,
            "leased": self.lease is not None,
            "lease": None if self.lease is None else self.lease.as_json(),
        }


@dataclass(frozen=True)
class Pool:
    name: str
    state: str
    capacity: Capacity
    host: Mapping[str, Any]
    template: int
    strategy: Strategy
    created_at: datetime
    updated_at: datetime

    def member_fields(self, member: str) -> dict[str, Any]:
        """The create fields of member ``member``: the template, its name, the strategy's."""
        fields = {**self.host, "name": member}
        if self.strategy.fallback_on_demand and fields.get("spot"):
            fields["spot_fallback_on_demand"] = True
        return fields

    def as_json(self, members: Iterable[PoolMember] | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "state": self.state,
            "capacity": {
                "target": self.capacity.target,
                "minimum": self.capacity.minimum,
                "maximum": self.capacity.maximum,
            },
            "host": dict(self.host),
            "template": self.template,
            "strategy": self.strategy.as_json(),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
        if members is not None:
            listed = list(members)
            by_state: dict[str, int] = {}
            for member in listed:
                by_state[member.host.state.value] = by_state.get(member.host.state.value, 0) + 1
            document["members"] = {
                "by_state": by_state,
                "leased": sum(1 for m in listed if m.lease is not None),
                "idle": sum(1 for m in listed if m.planned().idle),
            }
        return document


def _pool(row: sa.Row[Any]) -> Pool:
    m = row._mapping
    return Pool(
        name=m["name"],
        state=m["state"],
        capacity=Capacity(m["target"], m["minimum"], m["maximum"]),
        host=m["host"],
        template=m["template"],
        strategy=Strategy(**m["strategy"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _lease(row: sa.Row[Any]) -> Lease:
    m = row._mapping
    return Lease(
        id=m["id"],
        pool=m["pool"],
        host=m["host"],
        holder=m["holder"],
        state=m["state"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        ended_at=m["ended_at"],
    )


def check_template(name: str, host: Mapping[str, Any]) -> dict[str, Any]:
    """The host template, validated as ``POST /v1/hosts`` validates a host (by a
    member's name); ``InputError`` naming the ``host.`` field."""
    if "name" in host:
        raise InputError("host.name is not accepted: the pool names its members")
    try:
        check_create_fields({**host, "name": f"{name}-000000"})
    except InputError as error:
        raise InputError(f"host: {error}", hint=error.hint) from None
    return dict(host)


def _capacity_conflict(error: CapacityError) -> ConflictError:
    return ConflictError(str(error), hint="PATCH /v1/pools/NAME changes the capacity.")


class Pools:
    """The pools and leases tables, and the requests that change pools and members."""

    def __init__(
        self,
        database: Database,
        executions: Executions,
        store: Hosts,
        *,
        breaker: BreakerPolicy | None = None,
    ) -> None:
        self.database = database
        self.executions = executions
        self.hosts = store
        # The circuit breaker's policy every launch follows (None: no breaker).
        self.breaker = breaker

    # -- pools -------------------------------------------------------------------------

    def create(
        self, name: str, capacity: Capacity, host: Mapping[str, Any], strategy: Strategy
    ) -> Pool:
        check_pool_name(name)
        template = check_template(name, host)
        now = _now()
        with self.database.transaction() as connection:
            if connection.execute(sa.select(pools.c.name).where(pools.c.name == name)).first():
                raise ConflictError(f"a pool is named {name!r} already")
            connection.execute(
                pools.insert().values(
                    name=name,
                    state=ACTIVE,
                    target=capacity.target,
                    minimum=capacity.minimum,
                    maximum=capacity.maximum,
                    host=template,
                    template=1,
                    strategy=strategy.as_json(),
                    created_at=now,
                    updated_at=now,
                )
            )
        return self.get(name)

    def get(self, name: str) -> Pool:
        with self.database.transaction() as connection:
            return self._locked_pool(connection, name, lock=False)

    def find(self) -> list[Pool]:
        with self.database.transaction() as connection:
            rows = connection.execute(sa.select(pools).order_by(pools.c.created_at)).all()
        return [_pool(row) for row in rows]

    def members(self, name: str) -> list[PoolMember]:
        """The pool's hosts that are not DELETED, oldest first, with their leases."""
        with self.database.transaction() as connection:
            return self._members(connection, name)

    def update(
        self,
        name: str,
        *,
        capacity: Mapping[str, int] | None = None,
        host: Mapping[str, Any] | None = None,
        strategy: Mapping[str, Any] | None = None,
    ) -> Pool:
        """Change the capacity (the fields given), the host template (members made from
        the old one are replaced once idle) or the strategy."""
        with self.database.transaction() as connection:
            pool = self._locked_pool(connection, name)
            if pool.state == DRAINING:
                raise ConflictError(f"pool {name!r} is being deleted: it cannot be changed")
            merged = Capacity(
                **{
                    "target": pool.capacity.target,
                    "minimum": pool.capacity.minimum,
                    "maximum": pool.capacity.maximum,
                    **(capacity or {}),
                }
            )
            values: dict[str, Any] = {
                "target": merged.target,
                "minimum": merged.minimum,
                "maximum": merged.maximum,
                "updated_at": _now(),
            }
            if host is not None:
                values.update(host=check_template(name, host), template=pool.template + 1)
            if strategy is not None:
                values["strategy"] = Strategy(**{**pool.strategy.as_json(), **strategy}).as_json()
            connection.execute(pools.update().where(pools.c.name == name).values(**values))
        return self.get(name)

    def delete(self, name: str) -> Pool:
        """Drain the pool: idle members go now, leased ones once released or expired;
        the pool's record goes with its last member."""
        with self.database.transaction() as connection:
            self._locked_pool(connection, name)
            connection.execute(
                pools.update()
                .where(pools.c.name == name)
                .values(state=DRAINING, target=0, minimum=0, updated_at=_now())
            )
        return self.get(name)

    # -- the FaaSpot verbs ---------------------------------------------------------------

    def add(self, name: str, count: int) -> str:
        """Raise the target by ``count`` (never above maximum) and make that many members
        in one ``pools.add`` execution; its id."""
        if count < 1:
            raise InputError(f"count {count} must be at least 1")
        with self.database.transaction() as connection:
            pool = self._active_pool(connection, name)
            try:
                wanted = pool.capacity.scaled(count)
            except CapacityError as error:
                raise _capacity_conflict(error) from None
            members = self._members(connection, name)
            live = [m for m in members if m.planned().live]
            if len(live) + count > pool.capacity.maximum:
                raise ConflictError(
                    f"pool {name!r} has {len(live)} members: {count} more would be above its "
                    f"maximum {pool.capacity.maximum}"
                )
            zones = spread(
                self._offers(connection, pool, members), [m.planned() for m in members], count
            )
            launches = [(_member_name(name), zone) for zone in zones]
            execution_id = self.executions.submit_in(
                connection,
                "pools.add",
                f"pools/{name}",
                {"members": [member for member, _zone in launches]},
            )
            self._launch_in(connection, pool, launches, execution_id=execution_id)
            self._set_target(connection, name, wanted.target)
        return execution_id

    def remove(self, name: str, *, host: str | None = None, ip: str | None = None) -> str:
        """Lower the target by one and destroy one idle member (``host`` or the one at
        ``ip``, else the planner's choice); the ``hosts.delete`` execution's id."""
        if host is not None and ip is not None:
            raise InputError("host and ip both name the member to remove: give one")
        with self.database.transaction() as connection:
            pool = self._active_pool(connection, name)
            try:
                wanted = pool.capacity.scaled(-1)
            except CapacityError as error:
                raise _capacity_conflict(error) from None
            members = self._members(connection, name)
            chosen = self._chosen(pool, members, host=host, ip=ip)
            execution_id = self.hosts.request_in(connection, HostRequest.DELETE, chosen.host.name)
            self._set_target(connection, name, wanted.target)
        return execution_id

    def refresh_ip(self, name: str, which: str) -> str:
        """Give members a new public address (``hosts.refresh-ip``: a new Elastic IP, the
        old one released): ``"all"`` the idle RUNNING ones, else the member at address
        ``which`` (404 when none; 409 when leased: its holder keeps its address), in one
        ``pools.refresh-ip`` execution; its id. A member without an address of its own
        (spot, air-gapped) is refused (409) as ``POST /v1/hosts/NAME/refresh-ip`` is."""
        with self.database.transaction() as connection:
            pool = self._active_pool(connection, name)
            members = self._members(connection, name)
            if which == "all":
                chosen = [member for member in members if member.planned().idle]
                if not chosen:
                    raise ConflictError(f"pool {name!r} has no idle RUNNING member")
            else:
                chosen = [self._chosen(pool, members, host=None, ip=which)]
            names = [member.host.name for member in chosen]
            execution_id = self.executions.submit_in(
                connection, "pools.refresh-ip", f"pools/{name}", {"members": names}
            )
            for member in names:
                self.hosts.request_in(
                    connection, HostRequest.REFRESH_IP, member, execution_id=execution_id
                )
        return execution_id

    def _chosen(
        self, pool: Pool, members: list[PoolMember], *, host: str | None, ip: str | None
    ) -> PoolMember:
        if host is None and ip is None:
            found = plan(
                replace(pool.capacity, target=0, minimum=0),
                [m.planned() for m in members if m.planned().idle],
                template=pool.template,
                now=_now(),
                launch_budget=0,
            ).remove
            if not found:
                raise ConflictError(f"pool {pool.name!r} has no idle RUNNING member to remove")
            return next(m for m in members if m.host.name == found[0][0])
        given = [m for m in members if m.host.name == host or (ip is not None and m.address == ip)]
        if not given:
            what = f"host {host!r}" if host is not None else f"no member has the address {ip!r}"
            raise NotFoundError(
                f"{what} is not a member of pool {pool.name!r}"
                if host is not None
                else f"{what} in pool {pool.name!r}"
            )
        return given[0]  # a leased one is refused as its request is admitted

    # -- leases --------------------------------------------------------------------------

    def lease(
        self,
        name: str,
        *,
        ttl: str,
        holder: str,
        allow_cold_start: bool = False,
        waited: bool = False,
    ) -> Lease | None:
        """Lease an idle RUNNING member to ``holder`` for ``ttl``; with
        ``allow_cold_start`` and room below maximum, a new member (PENDING) when none is
        idle. None when no member can be had now. ``waited``: an earlier attempt of
        this request found none (the lease is recorded as served after waiting)."""
        lifetime = parse_duration(ttl, flag="ttl", maximum=MAX_LEASE_TTL)
        if not holder.strip():
            raise InputError("holder is empty: name who takes the lease (a CI job)")
        for _ in range(_LEASE_ATTEMPTS):
            try:
                with self.database.transaction() as connection:
                    return self._lease_in(
                        connection, name, lifetime, holder, allow_cold_start, waited
                    )
            except sa.exc.IntegrityError:
                continue  # another request leased that member first: pick again
        raise StateLockedError(f"pool {name!r}: every lease attempt lost its member to another")

    def _lease_in(
        self,
        connection: sa.Connection,
        name: str,
        lifetime: timedelta,
        holder: str,
        allow_cold_start: bool,
        waited: bool,
    ) -> Lease | None:
        pool = self._active_pool(connection, name)
        members = self._members(connection, name, lock=True)
        now = _now()
        chosen = pick_idle(
            [m.planned() for m in members],
            pool.template,
            now=now,
            max_lifetime=pool.strategy.lifetime(),
        )
        if chosen is None:
            live = sum(1 for m in members if m.planned().live)
            if not allow_cold_start or live >= pool.capacity.maximum:
                return None
            [zone] = spread(
                self._offers(connection, pool, members), [m.planned() for m in members], 1
            )
            host_name = _member_name(name)
            self._launch_in(connection, pool, [(host_name, zone)])
            served = "cold_start"
        else:
            host_name = chosen.name
            served = "after_wait" if waited else "at_once"
        lease_id = f"lease-{secrets.token_hex(8)}"
        connection.execute(
            leases.insert().values(
                id=lease_id,
                pool=name,
                host=host_name,
                holder=holder,
                state="active",
                created_at=now,
                expires_at=now + lifetime,
                ended_at=None,
                served=served,
            )
        )
        return self._lease_of(connection, name, lease_id)

    def get_lease(self, name: str, lease_id: str) -> Lease:
        with self.database.transaction() as connection:
            return self._lease_of(connection, name, lease_id)

    def release(self, name: str, lease_id: str) -> tuple[Lease, str | None]:
        """End the lease; its member is recycled per the strategy (replace: destroyed
        now when RUNNING, and the loop launches a fresh one; keep: idle again). The
        lease, and the id of the ``hosts.delete`` it caused, if any."""
        with self.database.transaction() as connection:
            lease = self._lease_of(connection, name, lease_id)
            if lease.state != "active":
                raise ConflictError(f"lease {lease_id} is {lease.state} already")
            connection.execute(
                leases.update()
                .where(leases.c.id == lease_id, leases.c.state == "active")
                .values(state="released", ended_at=_now())
            )
            execution_id = self._recycle(connection, name, lease.host)
            return self._lease_of(connection, name, lease_id), execution_id

    def _recycle(self, connection: sa.Connection, name: str, host: str) -> str | None:
        """After a lease ended: mark the member for replacement (or keep it), and
        destroy it now when it is RUNNING and to be replaced or its pool drains."""
        pool = self._locked_pool(connection, name, lock=False)
        if pool.strategy.recycle == "keep" and pool.state == ACTIVE:
            return None
        connection.execute(hosts.update().where(hosts.c.name == host).values(recycle=True))
        state = connection.execute(sa.select(hosts.c.state).where(hosts.c.name == host)).scalar()
        if state != HostState.RUNNING.value:
            return None  # the loop removes it once its execution ends
        return self.hosts.request_in(connection, HostRequest.DELETE, host)

    # -- the convergence pass -----------------------------------------------------------

    def converge(
        self, name: str, *, launches_per_minute: int = DEFAULT_LAUNCHES_PER_MINUTE
    ) -> Plan:
        """One pass over pool ``name``: reclaim expired leases, then launch and remove
        what ``mapt.pools.plan`` says (launches follow the breaker, ``_launch_in``).
        Returns the plan carried out."""
        now = _now()
        with self.database.transaction() as connection:
            pool = self._locked_pool(connection, name)
            expired = connection.execute(
                sa.select(leases.c.id, leases.c.host).where(
                    leases.c.pool == name, leases.c.state == "active", leases.c.expires_at <= now
                )
            ).all()
            for row in expired:
                connection.execute(
                    leases.update()
                    .where(leases.c.id == row.id, leases.c.state == "active")
                    .values(state="expired", ended_at=now)
                )
                self._recycle(connection, name, row.host)
            members = self._members(connection, name)
            recent = connection.execute(
                sa.select(sa.func.count()).where(
                    hosts.c.pool == name, hosts.c.created_at > now - timedelta(minutes=1)
                )
            ).scalar_one()
            decided = plan(
                pool.capacity,
                [member.planned() for member in members],
                offers=self._offers(connection, pool, members),
                template=pool.template,
                now=now,
                max_lifetime=pool.strategy.lifetime(),
                launch_budget=launches_per_minute - int(recent),
                draining=pool.state == DRAINING,
            )
            for member_name, _why in decided.remove:
                self.hosts.request_in(connection, HostRequest.DELETE, member_name)
            self._launch_in(
                connection, pool, [(_member_name(name), zone) for zone in decided.launch]
            )
            if pool.state == DRAINING and not members:
                connection.execute(pools.delete().where(pools.c.name == name))
        return decided

    # -- the records ---------------------------------------------------------------------

    def _locked_pool(self, connection: sa.Connection, name: str, *, lock: bool = True) -> Pool:
        query = sa.select(pools).where(pools.c.name == name)
        if lock and not self.database.is_sqlite:
            query = query.with_for_update()
        row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"no pool is named {name!r}")
        return _pool(row)

    def _active_pool(self, connection: sa.Connection, name: str) -> Pool:
        pool = self._locked_pool(connection, name)
        if pool.state == DRAINING:
            raise ConflictError(f"pool {name!r} is being deleted")
        return pool

    def _set_target(self, connection: sa.Connection, name: str, target: int) -> None:
        connection.execute(
            pools.update().where(pools.c.name == name).values(target=target, updated_at=_now())
        )

    def _members(
        self, connection: sa.Connection, name: str, *, lock: bool = False
    ) -> list[PoolMember]:
        query = (
            sa.select(hosts)
            .where(hosts.c.pool == name, hosts.c.state != HostState.DELETED.value)
            .order_by(hosts.c.created_at, hosts.c.name)
        )
        if lock and not self.database.is_sqlite:
            query = query.with_for_update()
        rows = connection.execute(query).all()
        active = {
            lease.host: lease
            for lease in (
                _lease(row)
                for row in connection.execute(
                    sa.select(leases).where(leases.c.pool == name, leases.c.state == "active")
                )
            )
        }
        broken = [
            r.execution_id for r in rows if r.state == HostState.ERROR.value and r.execution_id
        ]
        repairing: set[str] = set()
        if broken:
            in_flight = [ExecutionStatus.PENDING.value, ExecutionStatus.RUNNING.value]
            repairing = set(
                connection.execute(
                    sa.select(executions.c.id).where(
                        executions.c.id.in_(broken),
                        executions.c.name.in_([RECOVER, REPLACE]),
                        executions.c.status.in_(in_flight),
                    )
                ).scalars()
            )
        return [
            PoolMember(
                host=_host(row),
                template=int(row.template or 0),
                recycle=bool(row.recycle),
                lease=active.get(row.name),
                repairing=row.execution_id in repairing,
            )
            for row in rows
        ]

    def _launch_in(
        self,
        connection: sa.Connection,
        pool: Pool,
        launches: Sequence[tuple[str, str | None]],
        *,
        execution_id: str | None = None,
    ) -> None:
        """Admit the create of each ``(member, zone)`` of ``launches``, pinned to
        ``zone`` when the plan gave one (None: where the allocation finds the best
        offer). Every pool launch comes here: convergence, ``add`` and cold starts.

        The pool's open circuit breakers come first (``breaker_fields``, read once for
        all ``launches``): a spot member avoids their regions, on demand or on spot
        elsewhere per the strategy; a zone in a region they close, or in another region
        than the on-demand fallback's, is not pinned.
        """
        if not launches:
            return
        from mapt.service._interruptions import breaker_fields

        breakers = self._open_breakers(connection)
        closed = {region for (owner, region) in breakers if owner == pool.name}
        for member, zone in launches:
            fields = breaker_fields(
                pool.member_fields(member),
                pool.name,
                breakers,
                fallback_on_demand=pool.strategy.fallback_on_demand,
            )
            region = None if zone is None else zone[:-1]
            if zone is not None and region not in closed and fields.get("region") in (None, region):
                fields["availability_zone"] = zone
            self.hosts.request_in(
                connection,
                HostRequest.CREATE,
                None,
                fields,
                member={"pool": pool.name, "template": pool.template},
                execution_id=execution_id,
            )

    def _open_breakers(self, connection: sa.Connection) -> Mapping[Place, OpenBreaker]:
        """The circuit breakers open now (none without a breaker policy)."""
        from mapt.service._interruptions import recorded_breakers

        if self.breaker is None:
            return {}
        return recorded_breakers(connection, self.breaker, _now())

    def _offers(
        self, connection: sa.Connection, pool: Pool, members: Sequence[PoolMember]
    ) -> tuple[str, ...]:
        """The zones the pool's launches spread over now: a ranking of the kind they
        launch as (spot, or on demand where the open breakers send them)."""
        from mapt.service._interruptions import breaker_fields

        fields = breaker_fields(
            pool.host,
            pool.name,
            self._open_breakers(connection),
            fallback_on_demand=pool.strategy.fallback_on_demand,
        )
        return _ranked_zones(pool, members, spot=bool(fields.get("spot")))

    def _lease_of(self, connection: sa.Connection, name: str, lease_id: str) -> Lease:
        row = connection.execute(
            sa.select(leases).where(leases.c.id == lease_id, leases.c.pool == name)
        ).first()
        if row is None:
            raise NotFoundError(f"pool {name!r} has no lease {lease_id!r}")
        return _lease(row)


def _member_name(pool: str) -> str:
    return f"{pool}-{secrets.token_hex(3)}"


def _ranked_zones(pool: Pool, members: Iterable[PoolMember], *, spot: bool) -> tuple[str, ...]:
    """The zones launches on ``spot`` (else on demand) spread over, best first: the
    newest member's allocation of that kind (its choice, then the runners-up it kept:
    on spot the ranked market, on demand the region's other zones offering the types),
    in the template's region when it names one (a member is pinned to a zone of its
    region).

    Only an allocation of the launches' kind ranks: an on-demand one (a member the open
    breaker or the create's fallback put on demand) ranks zones that offer the types on
    demand, maybe none on spot, and a spot member pinned to such a zone cannot launch.
    No allocation of that kind known: none, and members are not pinned.
    """
    newest = None
    for member in members:
        allocation = (member.host.record or {}).get("allocation")
        if allocation and (allocation.get("spot_price") is not None) == spot:
            newest = member
    if newest is None:
        return ()
    allocation = (newest.host.record or {})["allocation"]
    zones = [allocation.get("availability_zone")]
    zones += [offer.get("availability_zone") for offer in allocation.get("candidates") or ()]
    region = pool.host.get("region")
    ranked: list[str] = []
    for zone in zones:
        if isinstance(zone, str) and zone not in ranked and region in (None, zone[:-1]):
            ranked.append(zone)
    return tuple(ranked)


# -- the operations (run in worker processes) -----------------------------------------


def _run_members(
    context: ExecutionContext, run: OperationFunction, *, state: HostState
) -> dict[str, Any]:
    """Run ``run`` (a host operation) for each member this execution moved to
    ``state``, one after another; a member another attempt finished already is
    skipped. The members done and what each operation answered (a refresh: the old and
    the new address); every failure raised once the others ran."""
    store = Hosts(context.database, Executions(context.database))
    failures: list[str] = []
    done: list[str] = []
    results: dict[str, Any] = {}
    for name in context.arguments["members"]:
        host = store.get(name)
        if host.state is not state or host.execution_id != context.execution_id:
            if host.state is HostState.RUNNING:
                done.append(name)
            continue
        try:
            results[name] = run(
                replace(context, target=name, arguments={"fields": dict(host.fields)})
            )
            done.append(name)
        except Interrupted:
            # A cancel, or the server stopping: no member is made after it (a cancel's
            # members left PENDING are cleaned up, a hand-back resumes with them).
            raise
        except MaptError as error:
            failures.append(f"{name}: {error}")
    if failures:
        raise OperationError(
            f"{len(failures)} of {len(context.arguments['members'])} members failed: "
            + "; ".join(failures)
        )
    return {"hosts": done, "results": results}


def run_add(context: ExecutionContext, create: OperationFunction = run_create) -> dict[str, Any]:
    """``pools.add``: create each member this execution recorded (PENDING)."""
    return _run_members(context, create, state=HostState.PENDING)


def run_refresh(
    context: ExecutionContext, refresh: OperationFunction = run_refresh_ip
) -> dict[str, Any]:
    """``pools.refresh-ip``: a new address for each member it took (UPDATING)."""
    return _run_members(context, refresh, state=HostState.UPDATING)


def pool_operations(
    add: OperationFunction = run_add, refresh: OperationFunction = run_refresh
) -> dict[str, Operation]:
    """The operations of the pool verbs (their members' changes resume as hosts' do)."""
    return {
        "pools.add": Operation("pools.add", add, preload=HOST_WORKER_MODULES),
        "pools.refresh-ip": Operation("pools.refresh-ip", refresh, preload=HOST_WORKER_MODULES),
    }


# -- the leader-only loop --------------------------------------------------------------


@dataclass(frozen=True)
class PoolSettings:
    """How often the leader converges every pool, and how many members one pool may
    launch in a minute (the bound that keeps a broken template from a launch storm)."""

    interval: float = 30.0
    launches_per_minute: int = DEFAULT_LAUNCHES_PER_MINUTE

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise InputError(f"--pool-interval {self.interval:g}s must be above 0 seconds")
        if self.launches_per_minute < 1:
            raise InputError(
                f"--pool-launches-per-minute {self.launches_per_minute} must be at least 1"
            )


def converge_pools(
    context: LeaderContext, *, launches_per_minute: int, breaker: BreakerPolicy | None = None
) -> None:
    """The leader's pass over every pool (``mapt.service._leader``'s task)."""
    executions = Executions(context.database)
    store = Pools(
        context.database, executions, Hosts(context.database, executions), breaker=breaker
    )
    for pool in store.find():
        if not context.leading():
            return  # leadership moved: the new leader goes on
        try:
            store.converge(pool.name, launches_per_minute=launches_per_minute)
        except MaptError as error:
            get_logger(__name__).warning("pool %s did not converge: %s", pool.name, error)
    context.submitted()


def pool_task(settings: PoolSettings, breaker: BreakerPolicy | None = None) -> LeaderTask:
    """The convergence loop as a leader-only task (``breaker``: the circuit breaker's
    policy its launches follow)."""
    return LeaderTask(
        "pools",
        interval=settings.interval,
        run=functools.partial(
            converge_pools, launches_per_minute=settings.launches_per_minute, breaker=breaker
        ),
    )
