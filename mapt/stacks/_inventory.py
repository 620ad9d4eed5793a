"""What a state backend holds: every stack's project, name, age, outputs and locks.

``mapt aws host list`` and ``mapt aws sweep`` need to know which projects have state.
They read the backend's checkpoint files directly (read-only, no Pulumi CLI, no AWS
write): ``.pulumi/stacks/<project>/<stack>.json`` in the project-scoped layout
(Pulumi >= 3.61) and ``.pulumi/stacks/<stack>.json`` in the legacy one, either
possibly gzip-compressed. Secret outputs stay encrypted in those files; they are left
out of the summary, so listing never needs the passphrase.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from mapt.core import OperationError, get_logger
from mapt.stacks._backend import Backend, list_locks, resolve_backend, s3_client

_log = get_logger(__name__)

# Pulumi's bookkeeping inside a DIY backend (workspace.BookkeepingDir) and the folders
# in it that hold one project's files in the project-scoped layout.
_BOOKKEEPING_DIR = ".pulumi"
_STACKS_DIR = "stacks/"
_PROJECT_DIRS = (
    "stacks/{project}/",
    "history/{project}/",
    "backups/{project}/",
    "locks/organization/{project}/",
)
_CHECKPOINT_SUFFIXES = (".json", ".json.gz")
# How Pulumi marks an encrypted value in a checkpoint (resource.SecretSig).
_SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
_STACK_RESOURCE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class StackSummary:
    """One stack in a backend, as its checkpoint describes it.

    ``kind`` is mapt's stack kind (``host``, ``spotOption``): the stack name without
    its ``-<project>`` suffix. ``updated_at`` is the time of the last update (None for a
    stack created but never updated). ``outputs`` holds the plain outputs only.
    """

    project: str
    stack_name: str
    updated_at: datetime | None
    resource_count: int
    outputs: Mapping[str, Any] = field(default_factory=dict)
    locks: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        suffix = f"-{self.project}"
        if self.stack_name.endswith(suffix):
            return self.stack_name[: -len(suffix)]
        return self.stack_name


def list_stacks(backend_url: str | None) -> list[StackSummary]:
    """Every stack in the backend (the local default for None), by project and name."""
    backend = resolve_backend(backend_url)
    store = _store(backend)
    summaries = []
    for key in store.keys(_STACKS_DIR):
        relative = key[len(_STACKS_DIR) :]
        if relative.count("/") > 1 or not relative.endswith(_CHECKPOINT_SUFFIXES):
            continue  # backups (.json.bak) and other bookkeeping
        summary = _summary(relative, store.read(key))
        if summary is None:
            continue
        locks = list_locks(backend, summary.project, summary.stack_name)
        summaries.append(
            StackSummary(
                project=summary.project,
                stack_name=summary.stack_name,
                updated_at=summary.updated_at,
                resource_count=summary.resource_count,
                outputs=summary.outputs,
                locks=tuple(locks),
            )
        )
    return sorted(summaries, key=lambda s: (s.project, s.stack_name))


def purge_project_state(backend_url: str | None, project: str) -> list[str]:
    """Delete what Pulumi keeps of ``project`` once its stacks are gone; return the keys.

    ``pulumi stack rm`` removes a stack's checkpoint but keeps its update history and
    backups, so a bucket shared by many CI runs fills up with dead projects. Only this
    project's folders are touched; other projects in the same backend stay as they are.
    """
    store = _store(resolve_backend(backend_url))
    keys = [key for folder in _PROJECT_DIRS for key in store.keys(folder.format(project=project))]
    store.delete(keys)
    removed = [store.location(key) for key in keys]
    for location in removed:
        _log.info("removed %s", location)
    return removed


def _summary(relative: str, data: bytes) -> StackSummary | None:
    """A checkpoint file's summary; None (with a warning) when it cannot be read."""
    try:
        if relative.endswith(".gz"):
            data = gzip.decompress(data)
        document = json.loads(data)
        checkpoint = document["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        _log.warning("skipping %s: not a Pulumi checkpoint (%s)", relative, error)
        return None
    stack_name = relative.rsplit("/", 1)[-1]
    for suffix in _CHECKPOINT_SUFFIXES:
        stack_name = stack_name.removesuffix(suffix)
    latest = checkpoint.get("latest") or {}
    resources = latest.get("resources") or []
    project = _project(checkpoint, resources, relative)
    if project is None:
        _log.warning("skipping %s: cannot tell which project it belongs to", relative)
        return None
    outputs: dict[str, Any] = {}
    for resource in resources:
        if resource.get("type") == _STACK_RESOURCE:
            outputs = {
                name: value
                for name, value in (resource.get("outputs") or {}).items()
                if not _is_secret(value)
            }
    return StackSummary(
        project=project,
        stack_name=stack_name,
        updated_at=_time((latest.get("manifest") or {}).get("time")),
        # The stack resource itself is not something a user created.
        resource_count=sum(1 for r in resources if r.get("type") != _STACK_RESOURCE),
        outputs=outputs,
    )


def _project(checkpoint: Mapping[str, Any], resources: list[Any], relative: str) -> str | None:
    """The project: from the path (project-scoped layout), else from a resource URN."""
    parts = relative.split("/")
    if len(parts) == 2:  # <project>/<stack>.json
        return parts[0]
    for resource in resources:
        urn = str(resource.get("urn", ""))
        # urn:pulumi:<stack>::<project>::<type>::<name>
        pieces = urn.split("::")
        if urn.startswith("urn:pulumi:") and len(pieces) >= 2:
            return pieces[1]
    stack = str(checkpoint.get("stack", ""))
    if stack.count("/") == 2:  # organization/<project>/<stack>
        return stack.split("/")[1]
    return None


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and _SECRET_SIGNATURE in value


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        # Go writes nanoseconds; Python 3.10 reads at most microseconds.
        head, dot, rest = text.partition(".")
        if not dot:
            return None
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :].replace("Z", "+00:00")
        try:
            return datetime.fromisoformat(f"{head}.{digits[:6]}{zone}")
        except ValueError:
            return None


class _Store(Protocol):
    """A backend's files under ``.pulumi/``, by relative key (``stacks/p/s.json``)."""

    def keys(self, prefix: str) -> list[str]:
        """The keys under ``prefix`` (a directory, ending in ``/``), sorted."""
        ...

    def read(self, key: str) -> bytes: ...

    def delete(self, keys: list[str]) -> None: ...

    def location(self, key: str) -> str:
        """Where ``key`` is, for messages: a path or an ``s3://`` URL."""
        ...


class _FileStore:
    def __init__(self, backend: Backend) -> None:
        assert backend.path is not None
        self._root = backend.path / _BOOKKEEPING_DIR

    def keys(self, prefix: str) -> list[str]:
        top = self._root / prefix
        if not top.is_dir():
            return []
        return sorted(
            path.relative_to(self._root).as_posix() for path in top.rglob("*") if path.is_file()
        )

    def read(self, key: str) -> bytes:
        path = self._root / key
        try:
            return path.read_bytes()
        except OSError as error:
            raise OperationError(f"cannot read the state file {path}: {error.strerror}") from error

    def location(self, key: str) -> str:
        return str(self._root / key)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._root / key
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise OperationError(
                    f"cannot remove the state file {path}: {error.strerror}"
                ) from error
            # Leave no empty project directories behind.
            for parent in path.parents:
                if parent == self._root or not parent.is_relative_to(self._root):
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break


class _S3Store:
    def __init__(self, backend: Backend) -> None:
        assert backend.bucket is not None
        self._bucket = backend.bucket
        root = f"{backend.prefix}/{_BOOKKEEPING_DIR}" if backend.prefix else _BOOKKEEPING_DIR
        self._root = root + "/"
        self._client = s3_client(backend)

    def keys(self, prefix: str) -> list[str]:
        with self._errors(f"cannot list the state in s3://{self._bucket}/{self._root}{prefix}"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._root + prefix
            )
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return sorted(key[len(self._root) :] for key in keys)

    def read(self, key: str) -> bytes:
        with self._errors(f"cannot read s3://{self._bucket}/{self._root}{key}"):
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=self._root + key)[
                "Body"
            ].read()
        return body

    def location(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._root}{key}"

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys
            batch = keys[start : start + 1000]
            with self._errors(f"cannot delete state in s3://{self._bucket}/{self._root}"):
                answer = self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": self._root + k} for k in batch], "Quiet": True},
                )
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise OperationError(
                    f"cannot delete s3://{self._bucket}/{first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, BotoCoreError) as error:
            raise OperationError(f"{what}: {error}") from error


def _store(backend: Backend) -> _Store:
    return _FileStore(backend) if backend.kind == "file" else _S3Store(backend)
