"""What the host lifecycle answers: typed, immutable records, never ``dict[str, Any]``.

``HostRecord`` is a host that was created or updated (or, on a dry run, would be);
``DestroyRecord`` what a destroy removed; ``HostStatus`` one project of a backend as
its state describes it. Each has ``to_dict`` giving the JSON document ``mapt aws host
... --output json`` prints, so the CLI and the service answer with one shape. Secrets
(the private keys, a Windows password) are kept in ``HostConnection`` out of ``repr``
and out of every ``to_dict``: they reach a caller only through ``HostRecord.connection``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mapt.allocation import AllocationResult
    from mapt.stacks import LockHolder, PlannedStep


@dataclass(frozen=True)
class HostConnection:
    """How to log in to a host: its address, user and key, and the bastion's if any.

    ``values`` are the connection files' contents (``host``, ``username``, ``id_rsa``,
    ``userpassword``, ``bastion_*``), secrets included; ``repr`` shows none of them.
    """

    values: Mapping[str, str] = field(repr=False)

    @property
    def host(self) -> str | None:
        return self.values.get("host")

    @property
    def username(self) -> str | None:
        return self.values.get("username")

    @property
    def private_key(self) -> str | None:
        return self.values.get("id_rsa")

    @property
    def password(self) -> str | None:
        """The Windows account's password (EC2's, delivered over SSH); None elsewhere."""
        return self.values.get("userpassword")

    @property
    def bastion_host(self) -> str | None:
        return self.values.get("bastion_host")

    @property
    def bastion_username(self) -> str | None:
        return self.values.get("bastion_username")

    @property
    def bastion_private_key(self) -> str | None:
        return self.values.get("bastion_id_rsa")


@dataclass(frozen=True)
class HostRecord:
    """A host created, updated in place or resized, or what a dry run would create.

    ``outputs`` are the host stack's plain outputs, secrets included (out of ``repr``):
    callers show ``public_outputs`` and log in with ``connection``. ``files`` are the
    connection files written (the private key's path among them). ``planned`` lists
    the resources a dry run would create and ``images`` the images it found;
    ``on_demand_price`` is what an on-demand dry run found in the Pricing API, or None
    with ``price_unknown`` saying why. ``expires_at`` is when the host removes itself.
    """

    project: str
    allocation: AllocationResult
    outputs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    files: tuple[Path, ...] = ()
    dry_run: bool = False
    planned: tuple[PlannedStep, ...] = ()
    images: tuple[Mapping[str, str], ...] = ()
    runner_name: str | None = None
    expires_at: datetime | None = None
    on_demand_price: float | None = None
    price_unknown: str | None = None

    @property
    def region(self) -> str:
        return self.allocation.region

    @property
    def availability_zone(self) -> str:
        return self.allocation.availability_zone

    @property
    def instance_types(self) -> tuple[str, ...]:
        return self.allocation.instance_types

    @property
    def spot(self) -> bool:
        return self.allocation.is_spot

    @property
    def spot_price(self) -> float | None:
        return self.allocation.spot_price

    @property
    def address(self) -> str | None:
        """The host's address (``host`` output); None on a dry run."""
        host = self.outputs.get("host")
        return None if host is None else str(host)

    @property
    def username(self) -> str | None:
        user = self.outputs.get("username")
        return None if user is None else str(user)

    @property
    def key_path(self) -> Path | None:
        """Where the private key was written (``id_rsa`` in the connection folder), if it was."""
        return next((path for path in self.files if path.name == "id_rsa"), None)

    @property
    def connection(self) -> HostConnection:
        from mapt.targets.aws import host_connection_values

        return HostConnection(host_connection_values(self.outputs))

    @property
    def hourly_price(self) -> float | None:
        """USD/hour of the instance: the spot bid, or the on-demand price when known."""
        chosen = self.allocation
        return chosen.spot_price if chosen.is_spot else self.on_demand_price

    def public_outputs(self) -> dict[str, Any]:
        """The host stack's outputs without its secrets (keys, password)."""
        from mapt.targets.aws import SECRET_OUTPUTS

        return {k: v for k, v in self.outputs.items() if k not in SECRET_OUTPUTS}

    def to_dict(self) -> dict[str, Any]:
        """The document ``mapt aws host create --output json`` prints (no secret)."""
        document: dict[str, Any] = {
            "dry_run": self.dry_run,
            "allocation": self.allocation.to_dict(),
            "hourly_price": self.hourly_price,
            "outputs": self.public_outputs(),
            "files": [str(path) for path in self.files],
        }
        if self.runner_name is not None:
            document["runner_name"] = self.runner_name
        if self.price_unknown is not None:
            document["hourly_price_unknown"] = self.price_unknown
        if self.dry_run:
            document["images"] = [dict(image) for image in self.images]
            document["resources"] = [
                {"op": step.op, "type": step.type, "name": step.name} for step in self.planned
            ]
        return document


@dataclass(frozen=True)
class AddressChange:
    """A host given a new public address: its Elastic IP replaced, the old one released
    (``refresh_ip``); or its name pointed at its instance's address (``repoint``; old and
    new are the same when it pointed there already).

    ``host`` is the host as it is now (its outputs name the new address).
    """

    project: str
    old_address: str
    new_address: str
    host: HostRecord

    def to_dict(self) -> dict[str, Any]:
        """The document ``mapt aws host refresh-ip --output json`` prints (no secret)."""
        return {
            "project": self.project,
            "old_address": self.old_address,
            "new_address": self.new_address,
            "host": self.host.to_dict(),
        }


@dataclass(frozen=True)
class DestroyRecord:
    """Which stacks were destroyed, which locks removed, which state files purged.

    ``runner`` says what happened to the project's GitHub runner (None: nothing to say).
    """

    project: str
    destroyed: tuple[str, ...]
    unlocked: tuple[str, ...] = ()
    purged: tuple[str, ...] = ()
    broken_lock: LockHolder | None = None
    runner: str | None = None

    @property
    def nothing_to_destroy(self) -> bool:
        return not self.destroyed

    def to_dict(self) -> dict[str, Any]:
        """The document ``mapt aws host destroy --output json`` prints."""
        document: dict[str, Any] = {
            "project": self.project,
            "destroyed": list(self.destroyed),
            "nothing_to_destroy": self.nothing_to_destroy,
            "unlocked": list(self.unlocked),
            "purged_state_files": len(self.purged),
        }
        if self.runner is not None:
            document["runner"] = self.runner
        return document


@dataclass(frozen=True)
class HostStatus:
    """One project in a backend, from its state alone (``mapt aws host list``).

    ``unreadable`` lists the project's state entries that could not be read, as
    (location, reason): the project exists, but what it holds is unknown. ``project``
    is empty for an unreadable legacy-layout file (only its contents name the project).
    ``awaited_secrets`` is what the host waits for after boot, ``configured_instance``
    the instance mapt delivered it to (None: not yet, e.g. a failed delivery). A spot
    replacement launched later is another instance than this one and has nothing (see
    specs/concepts/targets.md, Secrets).
    """

    project: str
    stacks: tuple[str, ...]
    region: str | None = None
    availability_zone: str | None = None
    instance_types: tuple[str, ...] = ()
    spot: bool | None = None
    host: str | None = None
    updated_at: datetime | None = None
    locked: bool = False
    # The host's DNS name (``--dns-zone``); ``host`` is the address it points at.
    dns_name: str | None = None
    awaited_secrets: tuple[str, ...] = ()
    configured_instance: str | None = None
    unreadable: tuple[tuple[str, str], ...] = ()

    @property
    def secrets_state(self) -> str:
        """``-`` (none needed), ``awaiting`` or ``delivered to i-...``."""
        if not self.awaited_secrets:
            return "-"
        if self.configured_instance is None:
            return "awaiting"
        return f"delivered to {self.configured_instance}"

    def to_dict(self) -> dict[str, Any]:
        """One entry of ``mapt aws host list --output json``."""
        return {
            "project": self.project,
            "stacks": list(self.stacks),
            "region": self.region,
            "availability_zone": self.availability_zone,
            "instance_types": list(self.instance_types),
            "spot": self.spot,
            "host": self.host,
            "dns_name": self.dns_name,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "locked": self.locked,
            "awaited_secrets": list(self.awaited_secrets),
            "configured_instance": self.configured_instance,
            "unreadable": [
                {"location": location, "reason": reason} for location, reason in self.unreadable
            ],
        }
