"""What a backend holds: every project and where its host runs, from state alone.

No AWS call, no lock, no passphrase: the state is read as it is, and a project whose
state cannot be read is answered with why, never left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mapt.core import InputError, OperationError
from mapt.hosts._records import HostStatus

if TYPE_CHECKING:
    from mapt.stacks import Engine, StackSummary
    from mapt.targets.aws import GroupInterruption


def list_hosts(engine: Engine, backend_url: str | None) -> list[HostStatus]:
    """Every project in the backend with where its host runs, from state alone.

    The host stack's outputs come first; a project with only a spot choice (created
    but not deployed, or a failed deploy) shows the choice. A project whose state
    cannot be read is listed with why (``HostStatus.unreadable``), never left out.
    """
    by_project: dict[str, list[StackSummary]] = {}
    for summary in engine.list_stacks(backend_url):
        by_project.setdefault(summary.project, []).append(summary)
    return [_host_summary(project, stacks) for project, stacks in sorted(by_project.items())]


def _host_summary(project: str, summaries: Sequence[StackSummary]) -> HostStatus:
    from mapt.targets.aws import HOST_STACK

    stacks = [s for s in summaries if s.unreadable is None]
    merged: dict[str, Any] = {}
    # Spot choice first, so the host stack's own outputs win where both have a value.
    for summary in sorted(stacks, key=lambda s: s.kind == HOST_STACK):
        merged.update(summary.outputs)
    az = merged.get("availability_zone", merged.get("az"))
    types = merged.get("instance_types") or ()
    spot = merged.get("spot")
    if spot is None and any(s.kind != HOST_STACK for s in stacks):
        spot = True  # only spot runs keep a spotOption stack
    times = [s.updated_at for s in stacks if s.updated_at is not None]
    return HostStatus(
        project=project,
        stacks=tuple(s.stack_name for s in summaries if s.stack_name),
        region=merged.get("region"),
        availability_zone=az,
        instance_types=tuple(str(t) for t in types),
        spot=spot,
        host=merged.get("host"),
        dns_name=merged.get("dns_name"),
        updated_at=max(times) if times else None,
        locked=any(s.locks for s in summaries),
        awaited_secrets=tuple(str(a) for a in merged.get("awaited_secrets") or ()),
        configured_instance=merged.get("configured_instance"),
        unreadable=tuple((s.location, s.unreadable) for s in summaries if s.unreadable is not None),
    )


class HostNotFoundError(InputError):
    """The project named has no stack in the backend: there is no host to act on."""

    def __init__(self, project: str, backend_url: str | None) -> None:
        self.project = project
        where = backend_url or "the local state"
        super().__init__(f"project {project!r} has no host in {where}")


def host_status(engine: Engine, backend_url: str | None, project: str) -> HostStatus:
    """The project's host as ``list_hosts`` shows it; ``HostNotFoundError`` without one.

    A project whose state cannot be read is answered (``unreadable`` says why), never
    taken for a project that does not exist.
    """
    summaries = engine.list_stacks(backend_url)
    stacks = [s for s in summaries if s.project == project]
    if not stacks:
        # An unreadable file of the legacy layout names its project only inside.
        unknown = [s for s in summaries if not s.project and s.unreadable is not None]
        if unknown:
            raise OperationError(
                f"whether project {project!r} has a host is unknown: "
                f"{unknown[0].location} cannot be read ({unknown[0].unreadable})"
            )
        raise HostNotFoundError(project, backend_url)
    return _host_summary(project, stacks)


@dataclass(frozen=True)
class HostInterruptions:
    """A host (as state says) and the spot interruptions its group's history shows.

    ``interruptions`` is None for a host they do not apply to (on demand: nothing
    interrupts it), oldest first otherwise (empty: none seen in the history).
    """

    status: HostStatus
    group: str | None
    interruptions: tuple[GroupInterruption, ...] | None

    def to_dict(self) -> dict[str, Any]:
        found = self.interruptions
        return {
            **self.status.to_dict(),
            "group": self.group,
            "interruptions_apply": found is not None,
            "interruptions": None if found is None else [i.to_dict() for i in found],
        }


def host_interruptions(status: HostStatus, session: Any) -> HostInterruptions:
    """The interruptions of ``status``'s host, from its Auto Scaling group's activities.

    Only a spot host has a group; an on-demand one answers that interruptions do not
    apply. Where state does not say where a spot host runs, that is an error, never
    "no interruption".
    """
    from mapt.core import RunContext
    from mapt.targets.aws import group_interruptions, host_group_name

    if status.unreadable:
        location, reason = status.unreadable[0]
        raise OperationError(f"the state of project {status.project!r} cannot be read: "
                             f"{location} ({reason})")  # fmt: skip
    if status.spot is False:
        return HostInterruptions(status, None, None)
    if status.region is None or status.spot is None:
        raise OperationError(
            f"the state of project {status.project!r} does not say where its host runs"
        )
    group = host_group_name(RunContext(project_name=status.project))
    return HostInterruptions(status, group, group_interruptions(session, status.region, group))
