"""Managed hosts: records that move through the state machine, changed by executions.

A request (create, update, delete) is admitted by the state machine
(``mapt.service._states.admit``) and recorded with its execution in one transaction, so
a host in PENDING, UPDATING or DELETING always has the execution that will move it on.
When that execution ends without its operation having run to settle the host (cancelled
before it started, or failed once its workers were lost), ``Hosts.settle_abandoned``
moves it on instead. The execution runs the host lifecycle of ``mapt.hosts`` (the
same code as ``mapt aws host``) in a worker process and settles the host through
``transition``:

- create: PENDING -> RUNNING; on failure the half-made host is destroyed
  (PENDING -> DELETING -> DELETED, the record keeping the create's error), or, when
  that destroy fails too, DELETING -> ERROR.
- update (resize, tags, timeout): RUNNING -> UPDATING -> RUNNING, or -> ERROR.
- refresh-ip (a new Elastic IP, the old one released): RUNNING -> UPDATING -> RUNNING,
  or -> ERROR; refused (409) for a host without an address of its own.
- delete: -> DELETING -> DELETED, or -> ERROR when the destroy fails (delete again).
- recover (submitted by the reconciler, ``mapt.service._reconciler``, when it finds a
  RUNNING host's machine gone; the host is ERROR by then): the create path again,
  ERROR -> RUNNING, or ERROR -> ERROR keeping the reason.
- replace (submitted when AWS warns that it takes a spot host back,
  ``mapt.service._interruptions``): in place, elsewhere or on demand, ERROR -> RUNNING,
  or ERROR -> ERROR (then the reconciler's recovery attempts follow).

Fields are those of ``mapt aws host create`` with underscores, the project as ``name``.
Secrets and server-side paths are not accepted over the API: a secret would sit in the
executions table, and a connection folder would be written on the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mapt.core import ExitCode, InputError, Interrupted, MaptError, get_logger
from mapt.service._costs import (
    DELETED,
    FAILED,
    RECOVERED,
    RESIZED,
    HostPlacement,
    host_placement,
    record_end,
    record_placement,
)
from mapt.service._database import Database
from mapt.service._errors import ConflictError, NotFoundError
from mapt.service._executions import Execution, ExecutionError, Executions, ExecutionStatus
from mapt.service._schema import executions, hosts, leases
from mapt.service._states import BUSY, HostRequest, HostState, admit, transition
from mapt.service._workers import ExecutionContext, Operation

if TYPE_CHECKING:
    from mapt.hosts import AwsHostTarget, HostServices

_log = get_logger(__name__)

# The operation the reconciler submits to re-deploy a host that failed.
RECOVER = "hosts.recover"
# The operation an interruption submits (``mapt.service._interruptions``).
REPLACE = "hosts.replace"
# Fields the API refuses: secrets (kept out of the records) and paths on the server.
REFUSED_FIELDS = {
    "rh_subscription_password": "a secret, which the service would have to store",
    "ghactions_runner_token": "a secret, which the service would have to store",
    "ghactions_app_private_key": "a secret, which the service would have to store",
    "ghactions_app_id": "runners are registered with the server's own GitHub credentials",
    "ghactions_app_installation_id": "runners are registered with the server's own "
    "GitHub credentials",
    "conn_details_output": "a folder on the server; the connection is not written to files",
    "project_name": "the project is 'name' in the API",
    "debug": "a switch of the server's own logs",
}
# What PATCH may change: the machine's shape, its disk, tags and lifetime.
UPDATE_FIELDS = frozenset(
    {
        "cpus",
        "memory",
        "gpus",
        "gpu_manufacturer",
        "nested_virt",
        "compute_families",
        "compute_sizes",
        "arch",
        "disk_size",
        "tags",
        "timeout",
    }
)


def _field_name(field: str) -> str:
    """Fields are named as the API spells them (``cpus``), not as flags (``--cpus``)."""
    return field


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ManagedHost:
    name: str
    state: HostState
    fields: Mapping[str, Any]
    record: Mapping[str, Any] | None
    error: ExecutionError | None
    execution_id: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    deleted_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        record = self.record or {}
        outputs = record.get("outputs", {}) if isinstance(record, Mapping) else {}
        return {
            "name": self.name,
            "state": self.state.value,
            "address": outputs.get("host"),
            "dns_name": outputs.get("dns_name"),
            "username": outputs.get("username"),
            "allocation": record.get("allocation"),
            "hourly_price": record.get("hourly_price"),
            "fields": dict(self.fields),
            "execution_id": self.execution_id,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "expires_at": _iso(self.expires_at),
            "deleted_at": _iso(self.deleted_at),
            "last_error": None if self.error is None else self.error.__dict__.copy(),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _host(row: sa.Row[Any]) -> ManagedHost:
    m = row._mapping
    error = None
    if m["error_type"] is not None:
        error = ExecutionError(m["error_type"], m["error_message"], m["error_exit_code"])
    return ManagedHost(
        name=m["name"],
        state=HostState(m["state"]),
        fields=m["fields"],
        record=m["record"],
        error=error,
        execution_id=m["execution_id"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        expires_at=m["expires_at"],
        deleted_at=m["deleted_at"],
    )


def check_create_fields(fields: Mapping[str, Any]) -> str:
    """Validate create ``fields`` as ``mapt aws host create`` would; the host's name."""
    _refuse(fields)
    from mapt.hosts import create_request

    request = create_request(dict(fields), name=_field_name)
    if request.runner is not None:
        _check_server_github(fields)
    return request.project


def _check_server_github(fields: Mapping[str, Any]) -> None:
    """A runner is registered (and removed) with the server's own GitHub credentials
    (``GITHUB_TOKEN``/``GH_TOKEN`` or ``MAPT_GHACTIONS_APP_*`` in its environment, read
    by every execution that registers or removes it); without any, nothing is created."""
    from mapt.integrations.github import resolve_auth

    field = (
        "ghactions_runner_repo" if fields.get("ghactions_runner_repo") else "ghactions_runner_org"
    )
    try:
        usable = resolve_auth() is not None
        problem = "this server has no GitHub credentials to register runners with"
    except InputError as error:
        usable, problem = False, f"this server's GitHub App is misconfigured ({error.message})"
    if not usable:
        raise ConflictError(
            f"{field} {fields[field]!r}: {problem}",
            hint="Start mapt serve with GITHUB_TOKEN (or GH_TOKEN), or MAPT_GHACTIONS_APP_ID, "
            "MAPT_GHACTIONS_APP_INSTALLATION_ID and MAPT_GHACTIONS_APP_PRIVATE_KEY, in its "
            "environment.",
        )


def _refuse(fields: Mapping[str, Any]) -> None:
    for field, why in REFUSED_FIELDS.items():
        if field in fields:
            raise InputError(f"{field} is not accepted over the API: {why}")


class Hosts:
    """The hosts table, and the one door through which requests change it."""

    def __init__(self, database: Database, executions: Executions) -> None:
        self.database = database
        self.executions = executions

    def get(self, name: str) -> ManagedHost:
        with self.database.transaction() as connection:
            row = connection.execute(sa.select(hosts).where(hosts.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no host is named {name!r}")
        return _host(row)

    def find(self, *, include_deleted: bool = False) -> list[ManagedHost]:
        query = sa.select(hosts).order_by(hosts.c.created_at)
        if not include_deleted:
            query = query.where(hosts.c.state != HostState.DELETED.value)
        with self.database.transaction() as connection:
            return [_host(row) for row in connection.execute(query)]

    def request(
        self,
        request: HostRequest,
        name: str | None,
        fields: Mapping[str, Any] | None = None,
        *,
        member: Mapping[str, Any] | None = None,
    ) -> str:
        """Admit ``request`` on host ``name`` and submit its execution; the execution id.

        Create takes the whole create ``fields`` (validated; the name is among them);
        update the fields to change (merged into the host's, validated as a whole);
        delete none. ``member`` (a create's pool and template) is recorded with the host.
        """
        with self.database.transaction() as connection:
            return self.request_in(connection, request, name, fields, member=member)

    def request_in(
        self,
        connection: sa.Connection,
        request: HostRequest,
        name: str | None,
        fields: Mapping[str, Any] | None = None,
        *,
        member: Mapping[str, Any] | None = None,
        execution_id: str | None = None,
    ) -> str:
        """``request`` inside the caller's transaction; with ``execution_id``, the host
        is moved on by that (already submitted) execution instead of a new one."""
        _refuse(fields or {})
        if request is HostRequest.CREATE:
            name = check_create_fields(fields or {})
        if name is None:
            raise InputError(f"a host {request.value} needs the host's name")
        query = sa.select(hosts).where(hosts.c.name == name)
        if not self.database.is_sqlite:
            query = query.with_for_update()
        row = connection.execute(query).first()
        current = None if row is None else _host(row)
        wanted = admit(name, None if current is None else current.state, request)
        if request is not HostRequest.CREATE:
            _refuse_leased(connection, name, request)
        merged = dict(fields or {})
        if request is HostRequest.UPDATE and current is not None:
            unknown = sorted(set(merged) - UPDATE_FIELDS)
            if unknown:
                raise InputError(
                    f"{unknown[0]} cannot be changed on a host: PATCH takes "
                    + ", ".join(sorted(UPDATE_FIELDS))
                )
            merged = {**current.fields, **merged}
            check_create_fields(merged)
        elif request is not HostRequest.CREATE and current is not None:
            merged = dict(current.fields)
        if request is HostRequest.REFRESH_IP and current is not None:
            _check_public_address(current)
        if execution_id is None:
            execution_id = self.executions.submit_in(
                connection, f"hosts.{request.value}", name, {"fields": merged}
            )
        now = _now()
        values: dict[str, Any] = {
            "state": wanted.value,
            "execution_id": execution_id,
            "updated_at": now,
        }
        if request is HostRequest.CREATE:
            values.update(
                fields=merged, record=None, created_at=now, expires_at=None, deleted_at=None,
                error_type=None, error_message=None, error_exit_code=None,
            )  # fmt: skip
            values.update({"pool": None, "template": None, "recycle": False, **(member or {})})
        if row is None:
            connection.execute(hosts.insert().values(name=name, **values))
        else:
            connection.execute(hosts.update().where(hosts.c.name == name).values(**values))
        return execution_id

    def settle(
        self,
        name: str,
        wanted: HostState,
        *,
        execution_id: str,
        record: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
        error: ExecutionError | None = None,
        expires_at: datetime | None = None,
        placement: HostPlacement | None = None,
    ) -> bool:
        """Move host ``name`` to ``wanted`` through the table, keeping what it got, for
        execution ``execution_id``; whether it moved.

        Only the host's own execution settles it: one that another execution owns now
        (a delete admitted while a recovery ran, ERROR being no busy state; a cleanup
        submitted once this execution was failed for its lost worker) is left as it is
        for that one, and so is a row that changed since it was read; both are logged.

        ``placement``: where it runs now, recorded in its history in the same transaction
        (a new interval when it moved); DELETED ends its open interval.
        """
        query = sa.select(hosts).where(hosts.c.name == name)
        if not self.database.is_sqlite:
            query = query.with_for_update()
        with self.database.transaction() as connection:
            row = connection.execute(query).first()
            if row is None:
                raise NotFoundError(f"no host is named {name!r}")
            current = _host(row)
            if current.execution_id != execution_id:
                _log.warning(
                    "host %s is %s for execution %s now: %s leaves it as it is",
                    name,
                    current.state.value,
                    current.execution_id,
                    execution_id,
                )
                return False
            values: dict[str, Any] = {}
            if record is not None:
                values.update(record=dict(record), expires_at=expires_at)
            if fields is not None:
                values["fields"] = dict(fields)
            at = self._move_in(connection, current, wanted, values, error)
            if at is None:
                _log.warning("host %s changed while %s settled it: left as is", name, execution_id)
                return False
            if placement is not None:
                why = RECOVERED if current.state is HostState.ERROR else RESIZED
                # A pool's member is priced as the pool's (GET /v1/pools/{name}/costs).
                placement = replace(placement, pool=row._mapping["pool"])
                record_placement(connection, name, placement, at=at, reason=why)
        return True

    def settle_abandoned(self) -> list[str]:
        """Move on every busy host whose execution ended without its operation having
        run to settle it; the names of the hosts moved.

        Such an execution was cancelled while pending, or failed once it lost its worker
        ``MAX_ATTEMPTS`` times (or to a bug before its operation settled the host); the
        host would stay PENDING, UPDATING or DELETING, every request on it 423, for
        ever. Never started (nothing was done): PENDING -> DELETED, UPDATING -> RUNNING
        (nothing changed), DELETING -> ERROR (delete again). Started, then cut short:
        PENDING -> DELETING with a ``hosts.delete`` submitted in the same transaction
        (what the create made is destroyed), UPDATING or DELETING -> ERROR. The host
        keeps why (the execution's error, or that it was cancelled).

        Called once a cancel or a lost worker's recovery ended executions, and on every
        reconciler pass, which settles what a server that died between the two left.
        """
        ended = sa.select(executions.c.id).where(
            executions.c.status.in_(
                [ExecutionStatus.FAILED.value, ExecutionStatus.CANCELLED.value]
            )
        )
        query = sa.select(hosts).where(
            hosts.c.state.in_([state.value for state in BUSY]), hosts.c.execution_id.in_(ended)
        )
        if not self.database.is_sqlite:
            query = query.with_for_update(of=hosts)
        moved: list[str] = []
        with self.database.transaction() as connection:
            found = [_host(row) for row in connection.execute(query).all()]
            by_id = {
                execution.id: execution
                for execution in self.executions.find_in(
                    connection, {host.execution_id for host in found if host.execution_id}
                )
            }
            for host in found:
                execution = by_id[host.execution_id or ""]
                wanted, error = _abandoned_move(host.state, execution)
                values: dict[str, Any] = {}
                if wanted is HostState.DELETING:
                    values["execution_id"] = self.executions.submit_in(
                        connection,
                        f"hosts.{HostRequest.DELETE.value}",
                        host.name,
                        {"fields": dict(host.fields)},
                    )
                if self._move_in(connection, host, wanted, values, error) is None:
                    # Never under the row locks; were it, the cleanup must not stay.
                    raise ConflictError(f"host {host.name!r} changed while it was settled")
                _log.warning(
                    "host %s: its execution %s (%s) was %s without settling it: now %s",
                    host.name,
                    execution.id,
                    execution.name,
                    execution.status.value,
                    wanted.value,
                )
                moved.append(host.name)
        return moved

    @staticmethod
    def _move_in(
        connection: sa.Connection,
        current: ManagedHost,
        wanted: HostState,
        values: Mapping[str, Any],
        error: ExecutionError | None,
    ) -> datetime | None:
        """Host ``current`` to ``wanted`` through the table, with ``values`` and
        ``error``, inside the caller's transaction; when it moved, or None when its row
        is no longer as read (another state or execution). DELETED ends its open cost
        interval."""
        if current.state is not wanted:
            transition(current.name, current.state, wanted)
        now = _now()
        changed: dict[str, Any] = {**values, "state": wanted.value, "updated_at": now}
        if error is not None:
            changed.update(
                error_type=error.type,
                error_message=error.message,
                error_exit_code=error.exit_code,
            )
        if wanted is HostState.DELETED:
            changed["deleted_at"] = now
        updated = connection.execute(
            hosts.update()
            .where(
                hosts.c.name == current.name,
                hosts.c.state == current.state.value,
                hosts.c.execution_id == current.execution_id,
            )
            .values(**changed)
        )
        if updated.rowcount != 1:
            return None
        if wanted is HostState.DELETED:
            record_end(connection, current.name, at=now, reason=DELETED)
        return now

    # -- the reconciler's doors (mapt.service._reconciler) ----------------------------

    def detect_failure(self, name: str, reason: str, attempts: int) -> str | None:
        """RUNNING -> ERROR with ``reason``, and the first recovery submitted; its id.

        None when the host is no longer RUNNING (a request got there first).
        """
        error = ExecutionError("HostFailure", reason, int(ExitCode.FAILED))
        return self._recover(name, HostState.RUNNING, None, reason, 1, attempts, error)

    def retry_recovery(self, host: ManagedHost, attempts: int) -> str | None:
        """ERROR -> ERROR: the next recovery attempt of ``host``, submitted; its id.

        None unless the host is still ERROR with the failed recovery as its execution.
        """
        previous = self.executions.get(host.execution_id or "")
        reason = str(previous.arguments.get("reason", ""))
        attempt = int(previous.arguments.get("attempt", 0)) + 1
        return self._recover(
            host.name, HostState.ERROR, host.execution_id, reason, attempt, attempts, None
        )

    def _recover(
        self,
        name: str,
        current: HostState,
        execution_id: str | None,
        reason: str,
        attempt: int,
        attempts: int,
        error: ExecutionError | None,
    ) -> str | None:
        with self.database.transaction() as connection:
            query = sa.select(hosts).where(hosts.c.name == name)
            if not self.database.is_sqlite:
                query = query.with_for_update()
            row = connection.execute(query).first()
            if row is None:
                return None
            found = _host(row)
            moved_on = execution_id is not None and found.execution_id != execution_id
            if found.state is not current or moved_on:
                return None
            transition(name, found.state, HostState.ERROR)
            submitted = self.executions.submit_in(
                connection,
                RECOVER,
                name,
                {
                    "fields": dict(found.fields),
                    "reason": reason,
                    "attempt": attempt,
                    "attempts": attempts,
                },
            )
            values: dict[str, Any] = {
                "state": HostState.ERROR.value,
                "execution_id": submitted,
                "updated_at": _now(),
            }
            if error is not None:
                values.update(
                    error_type=error.type,
                    error_message=error.message,
                    error_exit_code=error.exit_code,
                )
                # Its machine is gone: what it cost ends here, a recovery opens the next.
                record_end(connection, name, at=values["updated_at"], reason=FAILED)
            connection.execute(
                hosts.update()
                .where(hosts.c.name == name, hosts.c.state == found.state.value)
                .values(**values)
            )
        return submitted


def _abandoned_move(
    state: HostState, execution: Execution
) -> tuple[HostState, ExecutionError | None]:
    """Where a host in busy ``state`` goes once ``execution`` ended without settling it,
    and the error it keeps (``Hosts.settle_abandoned``)."""
    if execution.attempts == 0:  # cancelled before it started: nothing was done
        why = ExecutionError(
            "Cancelled",
            f"its {execution.name} {execution.id} was cancelled before it started",
            int(ExitCode.INTERRUPTED),
        )
        return {
            HostState.PENDING: (HostState.DELETED, why),
            HostState.UPDATING: (HostState.RUNNING, None),
            HostState.DELETING: (HostState.ERROR, why),
        }[state]
    why = execution.error or ExecutionError(
        "Cancelled",
        f"its {execution.name} {execution.id} was cancelled after {execution.attempts} "
        "attempts were cut short",
        int(ExitCode.INTERRUPTED),
    )
    return (HostState.DELETING if state is HostState.PENDING else HostState.ERROR), why


# What a request on a leased pool member would do to its holder, refused (409).
_LEASED_REFUSALS = {
    HostRequest.DELETE: "removed",
    HostRequest.UPDATE: "changed",
    HostRequest.REFRESH_IP: "given a new address",
}


def _refuse_leased(connection: sa.Connection, name: str, request: HostRequest) -> None:
    """Refuse (409) ``request`` on a pool member an active lease holds: its holder keeps
    the machine, its shape and its address until the lease ends. The caller holds the
    host's row (locked on PostgreSQL), which a lease takes too, so a lease and this
    request never both win. Every door comes here: the host routes and the pool verbs."""
    lease = connection.execute(
        sa.select(leases.c.holder, leases.c.expires_at).where(
            leases.c.host == name, leases.c.state == "active"
        )
    ).first()
    if lease is not None:
        raise ConflictError(
            f"host {name!r} is leased by {lease.holder!r} until {_iso(lease.expires_at)}: "
            f"a leased member is never {_LEASED_REFUSALS[request]}",
            hint="DELETE /v1/pools/POOL/leases/ID ends the lease first.",
        )


def _check_public_address(host: ManagedHost) -> None:
    """Refuse (409) a new address for a host that has none of its own, from its record."""
    from mapt.targets.aws import public_address_refusal

    outputs = (host.record or {}).get("outputs", {})
    refusal = public_address_refusal(outputs)
    if refusal is not None:
        raise ConflictError(f"host {host.name!r} cannot get a new address: {refusal}")


# -- reads of the host's state (in the server) ----------------------------------------


def host_state(services: HostServices, host: ManagedHost) -> dict[str, Any]:
    """The host's stacks as its state describes them now (``mapt aws host list``)."""
    from mapt.hosts import AwsHostTarget

    backend = host.fields.get("backed_url")
    status = AwsHostTarget(services).status(host.name, None if backend is None else str(backend))
    return status.to_dict()


def host_connection(services: HostServices, host: ManagedHost) -> dict[str, Any]:
    """How to log in: address, user, private key (and a Windows password), from state;
    an air-gapped host's bastion too (address, user, key), as the connection files hold.

    Refused (409) unless the host is RUNNING: only a deployed host has a connection.
    """
    from mapt.hosts import HostConnection
    from mapt.stacks import StackRef
    from mapt.targets.aws import HOST_STACK, host_connection_values

    if host.state is not HostState.RUNNING:
        raise ConflictError(f"host {host.name!r} is {host.state.value}: it has no connection")
    backend = host.fields.get("backed_url")
    secrets_provider = host.fields.get("secrets_provider")
    engine = services.engine(None if secrets_provider is None else str(secrets_provider), False)
    ref = StackRef(host.name, HOST_STACK, None if backend is None else str(backend))
    connection = HostConnection(host_connection_values(engine.outputs(ref)))
    return {
        # With a name (dns_zone): the name, as the `host` connection file holds it, and
        # the address it points at now.
        "address": connection.host,
        "ip_address": connection.values.get("address"),
        "username": connection.username,
        "private_key": connection.private_key,
        "password": connection.password,
        "bastion_host": connection.bastion_host,
        "bastion_username": connection.bastion_username,
        "bastion_private_key": connection.bastion_private_key,
    }


# -- the operations (run in worker processes) ----------------------------------------


def _hosts_of(context: ExecutionContext) -> tuple[Hosts, AwsHostTarget]:
    from mapt.hosts import AwsHostTarget

    return Hosts(context.database, Executions(context.database)), AwsHostTarget(context.services)


def _destroy_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    from mapt.hosts import DESTROY_FIELDS

    return {key: value for key, value in fields.items() if key in DESTROY_FIELDS}


def _handed_back(context: ExecutionContext, failure: BaseException) -> bool:
    """Whether ``failure`` is the worker stopping to hand its execution back (its server
    stops or died, or another worker holds the claim), not a cancel: the next attempt
    resumes the operation (Pulumi ``up`` is idempotent), so the host is left as it is
    for it, neither settled nor destroyed."""
    return isinstance(failure, Interrupted) and not (
        Executions(context.database).get(context.execution_id).cancel_requested
    )


def run_create(context: ExecutionContext) -> dict[str, Any]:
    from mapt.hosts import create_request

    store, target = _hosts_of(context)
    fields = dict(context.arguments["fields"])
    try:
        record = target.create(create_request(fields, name=_field_name))
    except MaptError as failure:
        if _handed_back(context, failure):
            raise
        error = ExecutionError.of(failure)
        if store.settle(
            context.target, HostState.DELETING, execution_id=context.execution_id, error=error
        ):
            _destroy(store, target, context, fields, keep=error)
        raise
    document = record.to_dict()
    store.settle(
        context.target,
        HostState.RUNNING,
        execution_id=context.execution_id,
        record=document,
        expires_at=record.expires_at,
        placement=host_placement(fields, document),
    )
    return document


def run_update(context: ExecutionContext) -> dict[str, Any]:
    from mapt.hosts import create_request

    store, target = _hosts_of(context)
    fields = dict(context.arguments["fields"])
    try:
        record = target.update(create_request(fields, name=_field_name))
    except MaptError as failure:
        if _handed_back(context, failure):
            raise
        store.settle(
            context.target,
            HostState.ERROR,
            execution_id=context.execution_id,
            error=ExecutionError.of(failure),
        )
        raise
    document = record.to_dict()
    store.settle(
        context.target,
        HostState.RUNNING,
        execution_id=context.execution_id,
        record=document,
        fields=fields,
        expires_at=record.expires_at,
        placement=host_placement(fields, document),
    )
    return document


def run_refresh_ip(context: ExecutionContext) -> dict[str, Any]:
    """A new public address (``AwsHostTarget.refresh_ip``); the host keeps its expiry."""
    from dataclasses import replace

    from mapt.hosts import create_request

    store, target = _hosts_of(context)
    request = create_request(dict(context.arguments["fields"]), name=_field_name)
    expires_at = store.get(context.target).expires_at
    request = replace(request, host=replace(request.host, expires_at=expires_at))
    try:
        change = target.refresh_ip(request)
    except InputError as refused:  # refused before anything changed
        store.settle(
            context.target,
            HostState.RUNNING,
            execution_id=context.execution_id,
            error=ExecutionError.of(refused),
        )
        raise
    except MaptError as failure:
        if _handed_back(context, failure):
            raise
        store.settle(
            context.target,
            HostState.ERROR,
            execution_id=context.execution_id,
            error=ExecutionError.of(failure),
        )
        raise
    document = change.host.to_dict()
    store.settle(
        context.target,
        HostState.RUNNING,
        execution_id=context.execution_id,
        record=document,
        expires_at=expires_at,
    )
    return change.to_dict()


def run_delete(context: ExecutionContext) -> dict[str, Any]:
    store, target = _hosts_of(context)
    fields = dict(context.arguments["fields"])
    return _destroy(store, target, context, fields, resumes=True)


def _destroy(
    store: Hosts,
    target: AwsHostTarget,
    context: ExecutionContext,
    fields: Mapping[str, Any],
    *,
    keep: ExecutionError | None = None,
    resumes: bool = False,
) -> dict[str, Any]:
    """DELETING -> DELETED (``keep``: the error that led here), or -> ERROR on failure.

    ``resumes``: ``context`` is the delete's execution, whose hand-back leaves the host
    DELETING for its next attempt to destroy again. A failed create's cleanup does not:
    its next attempt would run the create again, so a cleanup cut short ends ERROR
    (delete again).
    """
    from mapt.hosts import destroy_request

    try:
        record = target.destroy(destroy_request(_destroy_fields(fields), name=_field_name))
    except MaptError as failure:
        if resumes and _handed_back(context, failure):
            raise
        store.settle(
            context.target,
            HostState.ERROR,
            execution_id=context.execution_id,
            error=ExecutionError.of(failure),
        )
        raise
    store.settle(
        context.target, HostState.DELETED, execution_id=context.execution_id, error=keep
    )
    return dict(record.to_dict())


def run_recover(context: ExecutionContext) -> dict[str, Any]:
    """Re-deploy a failed host through the create path: ERROR -> RUNNING, or -> ERROR.

    A host that moved on meanwhile (a delete asked while it was ERROR) is left alone,
    before the create path and after it (``Hosts.settle`` leaves it to the delete).
    """
    from mapt.hosts import create_request

    store, target = _hosts_of(context)
    host = store.get(context.target)
    arguments = context.arguments
    if host.state is not HostState.ERROR or host.execution_id != context.execution_id:
        return {"recovered": False, "why": f"the host is {host.state.value} now"}
    attempt, attempts = int(arguments["attempt"]), int(arguments["attempts"])
    try:
        record = target.create(create_request(dict(arguments["fields"]), name=_field_name))
    except MaptError as failure:
        if _handed_back(context, failure):
            raise
        error = ExecutionError.of(failure)
        message = (
            f"{arguments['reason']}; recovery attempt {attempt} of {attempts} failed: "
            f"{error.message}"
        )
        store.settle(
            context.target,
            HostState.ERROR,
            execution_id=context.execution_id,
            error=replace(error, message=message),
        )
        raise
    document = record.to_dict()
    store.settle(
        context.target,
        HostState.RUNNING,
        execution_id=context.execution_id,
        record=document,
        expires_at=record.expires_at,
        placement=host_placement(arguments["fields"], document),
    )
    return {"recovered": True, "attempt": attempt, **document}


# What a host operation's worker imports to act (Pulumi's SDK and pulumi_aws, boto3, the
# programs): seconds of CPU, imported once by the workers' forkserver (``Operation.preload``).
# ``_program_modules`` loads what the host program loads only when it runs (pulumi_aws's
# lazy submodules, ``aws.ec2`` alone a second of CPU): every create loaded it again.
# ``mapt.service`` holds the operations' own functions (and SQLAlchemy, half a second):
# ``mapt serve``'s main module does not import it, so each worker did, to unpickle them.
# ``_worker_models`` parses the botocore models the workers' clients read, into the
# loader their sessions share: each worker parsed EC2's again, in each of its sessions.
HOST_WORKER_MODULES = (
    "boto3", "pulumi", "pulumi_aws", "mapt.hosts", "mapt.targets.aws",
    "mapt.targets.aws._program_modules", "mapt.targets.aws._worker_models", "mapt.service",
)  # fmt: skip


def host_operations(
    *,
    create: Any = run_create,
    update: Any = run_update,
    delete: Any = run_delete,
    recover: Any = run_recover,
    refresh_ip: Any = run_refresh_ip,
) -> dict[str, Operation]:
    """The operations of the host routes and of the reconciler (Pulumi ``up``/``destroy``
    resume safely; a new address resumed after a crash replaces the Elastic IP once
    more: the host ends with a new address, every older one released)."""
    return {
        "hosts.create": Operation("hosts.create", create, preload=HOST_WORKER_MODULES),
        "hosts.update": Operation("hosts.update", update, preload=HOST_WORKER_MODULES),
        "hosts.delete": Operation("hosts.delete", delete, preload=HOST_WORKER_MODULES),
        RECOVER: Operation(RECOVER, recover, preload=HOST_WORKER_MODULES),
        "hosts.refresh-ip": Operation("hosts.refresh-ip", refresh_ip, preload=HOST_WORKER_MODULES),
    }
