"""The engine operations that read or delete a DIY backend's files directly.

The Pulumi engine and the sandbox engine keep state the same way, as the Pulumi CLI
writes it to a DIY backend (``.pulumi/stacks``, ``.pulumi/locks``, history and
backups), so listing stacks, reading and removing locks and purging a project's state
is the same file work for both, and needs no Pulumi CLI, no passphrase, no workspace.
"""

from __future__ import annotations

from mapt.stacks._backend import list_locks, remove_locks, resolve_backend
from mapt.stacks._engine import StackRef
from mapt.stacks._inventory import StackSummary, list_stacks, purge_project_state


class _BackendStateFiles:
    """``force_unlock``, ``list_stacks``, ``purge_project_state`` and ``list_locks`` of an
    engine whose state is a Pulumi DIY backend (file or s3)."""

    def force_unlock(self, ref: StackRef) -> list[str]:
        """Delete this stack's lock files in its backend (no Pulumi CLI needed)."""
        return remove_locks(resolve_backend(ref.backend_url), ref.project, ref.stack_name)

    def list_stacks(self, backend_url: str | None) -> list[StackSummary]:
        """Read from the backend's checkpoint files (no Pulumi CLI needed)."""
        return list_stacks(backend_url)

    def purge_project_state(self, backend_url: str | None, project: str) -> list[str]:
        """Delete what the backend still keeps of ``project`` (history, backups, locks)."""
        return purge_project_state(backend_url, project)

    def list_locks(self, ref: StackRef) -> list[str]:
        """This stack's lock entries, left as they are."""
        return list_locks(resolve_backend(ref.backend_url), ref.project, ref.stack_name)
