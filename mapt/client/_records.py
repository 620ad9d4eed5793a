"""What the server answers, as typed immutable records (parsed from its JSON once, here).

``Execution`` is the unit of all work on the server; ``Host`` a managed host's record
with its state; ``host_record`` and ``destroy_record`` turn a finished execution's
result back into the library's own ``HostRecord`` / ``DestroyRecord``, so the CLI prints
a host created on a server exactly as one created locally. The connection (with its
private key) is a ``mapt.hosts.HostConnection`` whose values are the connection files'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from mapt._api import ExecutionStatus, HostState
from mapt.client._errors import server_error
from mapt.core import MaptError, OperationError
from mapt.hosts import AddressChange, DestroyRecord, HostConnection, HostRecord, HostStatus


@dataclass(frozen=True)
class ExecutionFailure:
    """Why an execution failed: the error's class name, message and the CLI's exit code."""

    type: str
    message: str
    exit_code: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ExecutionFailure | None:
        if data is None:
            return None
        return cls(str(data["type"]), str(data["message"]), int(data["exit_code"]))

    def as_error(self, *, hint: str | None = None) -> MaptError:
        """The ``mapt.core`` error the local command would have raised."""
        return server_error(
            None,
            {"error": {"type": self.type, "message": self.message, "exit_code": self.exit_code}},
            fallback=self.message,
            hint=hint,
        )


@dataclass(frozen=True)
class Execution:
    """One durable request on the server (``hosts.create``, ``hosts.delete``, ...)."""

    id: str
    name: str
    target: str
    status: ExecutionStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: ExecutionFailure | None
    result: Any = field(repr=False)
    attempts: int = 0
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.status.finished

    def raise_for_error(self) -> Execution:
        """This execution when it succeeded; else the error it failed with (a cancelled
        one is an ``OperationError``), raised. Unfinished is not success either."""
        if self.status is ExecutionStatus.SUCCEEDED:
            return self
        if self.status is ExecutionStatus.FAILED and self.error is not None:
            raise self.error.as_error()
        if self.status is ExecutionStatus.CANCELLED:
            raise OperationError(f"execution {self.id} ({self.name} {self.target}) was cancelled")
        raise OperationError(
            f"execution {self.id} ({self.name} {self.target}) is {self.status.value}, not finished",
            hint=f"mapt execution get {self.id} shows it later.",
        )

    def to_dict(self) -> dict[str, Any]:
        """The execution as the server shows it (``mapt execution get --output json``)."""
        return dict(_jsonable(asdict(self)))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Execution:
        error = data.get("error")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            target=str(data["target"]),
            status=ExecutionStatus(data["status"]),
            created_at=_time(data["created_at"]),
            started_at=_optional_time(data.get("started_at")),
            finished_at=_optional_time(data.get("finished_at")),
            error=ExecutionFailure.from_json(error),
            result=data.get("result"),
            attempts=int(data.get("attempts") or 0),
            cancel_requested=bool(data.get("cancel_requested")),
        )


@dataclass(frozen=True)
class Host:
    """A managed host as the server records it."""

    name: str
    state: HostState
    address: str | None
    username: str | None
    allocation: Mapping[str, Any] | None = field(repr=False)
    hourly_price: float | None
    fields: Mapping[str, Any] = field(repr=False)
    execution_id: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    deleted_at: datetime | None
    last_error: ExecutionFailure | None

    @property
    def region(self) -> str | None:
        return None if self.allocation is None else str(self.allocation["region"])

    def as_status(self) -> HostStatus:
        """The host as a row of ``mapt aws host list`` (locked while an execution works)."""
        chosen = self.allocation or {}
        return HostStatus(
            project=self.name,
            stacks=(),
            region=chosen.get("region"),
            availability_zone=chosen.get("availability_zone"),
            instance_types=tuple(chosen.get("instance_types") or ()),
            spot=None if not chosen else chosen.get("spot_price") is not None,
            host=self.address,
            updated_at=self.updated_at,
            locked=self.state.busy,
        )

    def to_dict(self) -> dict[str, Any]:
        """The host as the server shows it (``mapt aws host list --server --output json``)."""
        return dict(_jsonable(asdict(self)))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Host:
        error = data.get("last_error")
        price = data.get("hourly_price")
        return cls(
            name=str(data["name"]),
            state=HostState(data["state"]),
            address=_optional_text(data.get("address")),
            username=_optional_text(data.get("username")),
            allocation=data.get("allocation"),
            hourly_price=None if price is None else float(price),
            fields=dict(data.get("fields") or {}),
            execution_id=_optional_text(data.get("execution_id")),
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
            expires_at=_optional_time(data.get("expires_at")),
            deleted_at=_optional_time(data.get("deleted_at")),
            last_error=ExecutionFailure.from_json(error),
        )


# The server's connection answer -> the connection files' names (mapt.targets.aws).
_CONNECTION_FILES = (
    ("address", "host"),
    ("ip_address", "address"),
    ("username", "username"),
    ("private_key", "id_rsa"),
    ("password", "userpassword"),
    ("bastion_host", "bastion_host"),
    ("bastion_username", "bastion_username"),
    ("bastion_private_key", "bastion_id_rsa"),
)


def host_connection(data: Mapping[str, Any]) -> HostConnection:
    """The server's ``connection`` answer as the values of the connection files."""
    return HostConnection(
        {file: str(data[key]) for key, file in _CONNECTION_FILES if data.get(key) is not None}
    )


def host_record(result: Mapping[str, Any], *, project: str) -> HostRecord:
    """A ``hosts.create``/``hosts.update`` result (``HostRecord.to_dict``) as the record.

    Its outputs are the public ones (the key comes with ``hosts.connection``); its files
    are none (the server writes none): the caller adds those it writes.
    """
    from mapt.allocation import AllocationResult

    allocation = AllocationResult.from_dict(result["allocation"])
    price = result.get("hourly_price")
    return HostRecord(
        project=project,
        allocation=allocation,
        outputs=dict(result.get("outputs") or {}),
        runner_name=_optional_text(result.get("runner_name")),
        on_demand_price=None if allocation.is_spot or price is None else float(price),
        price_unknown=_optional_text(result.get("hourly_price_unknown")),
    )


def address_change(result: Mapping[str, Any]) -> AddressChange:
    """A ``hosts.refresh-ip`` result (``AddressChange.to_dict``) as the record."""
    project = str(result["project"])
    return AddressChange(
        project=project,
        old_address=str(result["old_address"]),
        new_address=str(result["new_address"]),
        host=host_record(result["host"], project=project),
    )


def destroy_record(result: Mapping[str, Any]) -> DestroyRecord:
    """A ``hosts.delete`` result (``DestroyRecord.to_dict``) as the record, for printing.

    The purged state files are known by their count alone: for JSON, print the result
    itself (it is ``DestroyRecord.to_dict``).
    """
    return DestroyRecord(
        project=str(result["project"]),
        destroyed=tuple(str(name) for name in result.get("destroyed") or ()),
        unlocked=tuple(str(name) for name in result.get("unlocked") or ()),
        runner=_optional_text(result.get("runner")),
    )


def host_status(data: Mapping[str, Any]) -> HostStatus:
    """``GET /v1/hosts/{name}/status``'s ``status`` (``HostStatus.to_dict``) as the record."""
    updated = data.get("updated_at")
    return HostStatus(
        project=str(data["project"]),
        stacks=tuple(str(name) for name in data.get("stacks") or ()),
        region=_optional_text(data.get("region")),
        availability_zone=_optional_text(data.get("availability_zone")),
        instance_types=tuple(str(name) for name in data.get("instance_types") or ()),
        spot=data.get("spot"),
        host=_optional_text(data.get("host")),
        updated_at=None if updated is None else datetime.fromisoformat(str(updated)),
        locked=bool(data.get("locked")),
        awaited_secrets=tuple(str(name) for name in data.get("awaited_secrets") or ()),
        configured_instance=_optional_text(data.get("configured_instance")),
        unreadable=tuple(
            (str(entry["location"]), str(entry["reason"])) for entry in data.get("unreadable") or ()
        ),
    )


def _jsonable(value: Any) -> Any:
    """``value`` with times as the server writes them (ISO 8601, ``Z``) and enums as text."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _time(value: Any) -> datetime:
    """An ISO 8601 time of the server (``...Z``) as an aware datetime."""
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)
