"""What a state backend holds: every stack's project, name, age, outputs and locks.

``mapt aws host list`` and ``mapt aws sweep`` need to know which projects have state.
They read the backend's checkpoint files directly (read-only, no Pulumi CLI, no Pulumi
import, no AWS write): ``.pulumi/stacks/<project>/<stack>.json`` in the project-scoped
layout (Pulumi >= 3.61) and ``.pulumi/stacks/<stack>.json`` in the legacy one, plain,
gzip-compressed (``.json.gz``) or zstd-compressed (``.json.zst``, written when
``PULUMI_DIY_BACKEND_ZSTD`` is set). Secret outputs stay encrypted in those files;
they are left out of the summary, so listing never needs the passphrase.

Fail closed: an entry that cannot be listed, read, decompressed or parsed into a
checkpoint is returned as a summary marked ``unreadable`` (with its project, the
folder name), never dropped: a reader that skipped it would take a live project for
one without state. Only a failure to list ``.pulumi/stacks/`` itself raises.

Cost: two listings (stacks and locks, in parallel), then every checkpoint read in
parallel, through one S3 client: two sequential rounds whatever the number of stacks.
A purge lists its four folders in parallel, then deletes: two rounds too.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from mapt.core import (
    OperationError,
    get_logger,
    make_private_dir,
    translating_aws_errors,
    write_private_file,
)
from mapt.stacks._backend import (
    S3_MAX_CONNECTIONS,
    Backend,
    delete_s3_objects,
    list_backend_locks,
    resolve_backend,
    s3_client,
)

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
_CHECKPOINT_SUFFIXES = (".json", ".json.gz", ".json.zst")
# How Pulumi marks an encrypted value in a checkpoint (resource.SecretSig).
_SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
_STACK_RESOURCE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class StackSummary:
    """One stack in a backend, as its checkpoint describes it.

    ``kind`` is mapt's stack kind (``host``, ``spotOption``): the stack name without
    its ``-<project>`` suffix. ``updated_at`` is the time of the last update (None for a
    stack created but never updated). ``outputs`` holds the plain outputs only.
    ``location`` is the checkpoint's path or ``s3://`` URL.

    ``unreadable`` says why the entry could not be read (None when it was): such a
    summary still counts as state of its ``project`` (the folder name); its time,
    resource count and outputs are unknown (None, 0, empty). ``stack_name`` is empty
    when the project's folder could not be listed, ``project`` when an unreadable
    file is in the legacy layout (where only the file's contents name the project).
    """

    project: str
    stack_name: str
    updated_at: datetime | None
    resource_count: int
    outputs: Mapping[str, Any] = field(default_factory=dict)
    locks: tuple[str, ...] = ()
    unreadable: str | None = None
    location: str = ""

    @property
    def kind(self) -> str:
        suffix = f"-{self.project}"
        if self.stack_name.endswith(suffix):
            return self.stack_name[: -len(suffix)]
        return self.stack_name


def list_stacks(backend_url: str | None) -> list[StackSummary]:
    """Every stack in the backend (the local default for None), by project and name.

    Unreadable entries are included, marked (see ``StackSummary.unreadable``). Raises
    ``OperationError`` when the backend's stacks or locks cannot be listed at all.
    """
    backend = resolve_backend(backend_url)
    store = _store(backend)
    with ThreadPoolExecutor(max_workers=S3_MAX_CONNECTIONS) as pool:
        # Round 1: both listings at once. Round 2: every checkpoint at once.
        locks_listed = pool.submit(list_backend_locks, backend)
        entries = store.checkpoints()
        summaries = list(pool.map(lambda entry: _read(store, entry), entries))
        locks = locks_listed.result()
    with_locks = [_with_locks(summary, backend, locks) for summary in summaries]
    return sorted(with_locks, key=lambda s: (s.project, s.stack_name, s.location))


def purge_project_state(backend_url: str | None, project: str) -> list[str]:
    """Delete what Pulumi keeps of ``project`` once its stacks are gone; return the keys.

    ``pulumi stack rm`` removes a stack's checkpoint but keeps its update history and
    backups, so a bucket shared by many CI runs fills up with dead projects. Only this
    project's folders are touched; other projects in the same backend stay as they are.
    """
    store = _store(resolve_backend(backend_url))
    folders = [folder.format(project=project) for folder in _PROJECT_DIRS]
    with ThreadPoolExecutor(max_workers=len(folders)) as pool:  # one round, not four
        keys = [key for listed in pool.map(store.keys, folders) for key in listed]
    store.delete(keys)
    removed = [store.location(key) for key in keys]
    for location in removed:
        _log.info("removed %s", location)
    return removed


def stack_exists(backend: Backend, project: str, stack_name: str) -> bool:
    """Whether the backend holds a checkpoint of the stack, as ``pulumi stack select``
    would find it (``stacks/<project>/<stack>.json[.gz|.zst]``, or the legacy
    ``stacks/<stack>.json[.gz|.zst]`` of this project): two listings, no Pulumi CLI,
    nothing decrypted.

    Which files are checkpoints and whose project each is are decided as
    ``list_stacks`` decides them (``_checkpoint_entries``, ``_read``): a legacy file
    belongs to the project its contents name, so another project's stack of the same
    name is not this one. ``pulumi stack init`` writes the checkpoint before any update
    and ``stack rm`` removes it, so a stack created but never updated exists. A folder
    that cannot be listed, or a legacy file whose project cannot be read, raises
    ``OperationError``: unknown state is never taken for no stack.
    """
    store = _store(backend)
    folders = (f"{_STACKS_DIR}{project}/", _STACKS_DIR)
    listed = [key for folder in folders for key in store.named(folder + stack_name)]
    for entry in _checkpoint_entries(listed):
        if entry.stack_name != stack_name:
            continue
        summary = _read(store, entry)
        if summary.project == project:
            return True
        if not summary.project:
            raise OperationError(
                f"cannot tell whether stack {stack_name} exists: {summary.location} "
                f"cannot be read ({summary.unreadable})"
            )
    return False


def _with_locks(
    summary: StackSummary, backend: Backend, locks: Mapping[str, tuple[str, ...]]
) -> StackSummary:
    held = [
        entry
        for directory in backend.lock_dirs(summary.project, summary.stack_name)
        for entry in locks.get(directory, ())
    ]
    return replace(summary, locks=tuple(held))


@dataclass(frozen=True)
class _Entry:
    """One thing found under ``stacks/``: a checkpoint file, or a folder that failed."""

    key: str  # relative to .pulumi/, e.g. stacks/demo/host-demo.json
    error: str | None = None  # why the folder could not be listed

    @property
    def relative(self) -> str:
        return self.key[len(_STACKS_DIR) :]

    @property
    def project(self) -> str:
        """The folder name (project-scoped layout); empty for a legacy file."""
        head, slash, _ = self.relative.rstrip("/").partition("/")
        return head if slash or self.error is not None else ""

    @property
    def stack_name(self) -> str:
        if self.error is not None:
            return ""
        name = self.relative.rsplit("/", 1)[-1]
        for suffix in _CHECKPOINT_SUFFIXES:
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name


class _Unreadable(Exception):
    """A checkpoint cannot be read or is not one (the message says why, without where)."""


def _read(store: _Store, entry: _Entry) -> StackSummary:
    """The entry's summary; an unreadable one is marked, never dropped."""
    location = store.location(entry.key)

    def unreadable(reason: str) -> StackSummary:
        return StackSummary(
            project=entry.project,
            stack_name=entry.stack_name,
            updated_at=None,
            resource_count=0,
            unreadable=reason,
            location=location,
        )

    if entry.error is not None:
        return unreadable(entry.error)
    try:
        return _parse(entry, _decompress(entry.key, store.read(entry.key)), location)
    except _Unreadable as error:
        return unreadable(str(error))


def _decompress(key: str, data: bytes) -> bytes:
    try:
        if key.endswith(".gz"):
            return gzip.decompress(data)
        if key.endswith(".zst"):
            return _zstd_decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise _Unreadable(f"cannot decompress it: {error or type(error).__name__}") from error
    return data


def _zstd_decompress(data: bytes) -> bytes:
    """Every zstd frame in ``data``; a frame cut short is an error, not a shorter text."""
    import zstandard

    out = []
    rest = data
    try:
        while rest:
            frame = zstandard.ZstdDecompressor().decompressobj()
            out.append(frame.decompress(rest))
            if not frame.eof:
                raise _Unreadable("cannot decompress it: the zstd data is truncated")
            rest = frame.unused_data
    except zstandard.ZstdError as error:
        raise _Unreadable(f"cannot decompress it: {error}") from error
    return b"".join(out)


def _parse(entry: _Entry, data: bytes, location: str) -> StackSummary:
    """The summary of a checkpoint document (apitype.VersionedCheckpoint), shape checked."""
    try:
        document = json.loads(data)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise _Unreadable(f"not JSON: {error}") from error
    checkpoint = _field(document, "checkpoint", dict, "the document")
    latest = _field(checkpoint, "latest", dict, "checkpoint", optional=True) or {}
    resources = _field(latest, "resources", list, "checkpoint.latest", optional=True) or []
    if not all(isinstance(r, dict) for r in resources):
        raise _Unreadable("not a Pulumi checkpoint: a resource is not an object")
    manifest = _field(latest, "manifest", dict, "checkpoint.latest", optional=True) or {}
    project = entry.project or _project(checkpoint, resources)
    if project is None:
        raise _Unreadable("cannot tell which project it belongs to")
    outputs: dict[str, Any] = {}
    for resource in resources:
        if resource.get("type") == _STACK_RESOURCE:
            plain = _field(resource, "outputs", dict, "the stack resource", optional=True) or {}
            outputs = {name: value for name, value in plain.items() if not _is_secret(value)}
    return StackSummary(
        project=project,
        stack_name=entry.stack_name,
        updated_at=_time(manifest.get("time")),
        # The stack resource itself is not something a user created.
        resource_count=sum(1 for r in resources if r.get("type") != _STACK_RESOURCE),
        outputs=outputs,
        location=location,
    )


def _field(container: Any, name: str, kind: type, where: str, *, optional: bool = False) -> Any:
    """``container[name]`` if it has the type a checkpoint gives it; else why not."""
    if not isinstance(container, dict):
        raise _Unreadable(f"not a Pulumi checkpoint: {where} is not an object")
    value = container.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        found = "missing" if value is None else f"a {type(value).__name__}"
        raise _Unreadable(f"not a Pulumi checkpoint: {where}.{name} is {found}")
    return value


def _project(checkpoint: Mapping[str, Any], resources: list[Any]) -> str | None:
    """A legacy-layout checkpoint's project: from a resource URN or its stack name."""
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

    def named(self, prefix: str) -> list[str]:
        """The keys in ``prefix``'s folder whose names start with its last part.

        Raises ``OperationError`` when the folder cannot be listed for any other
        reason than not being there (a part of its path a file, no permission).
        """
        ...

    def checkpoints(self) -> list[_Entry]:
        """What ``stacks/`` holds: checkpoint files and folders that cannot be listed.

        Raises ``OperationError`` when ``stacks/`` itself cannot be listed.
        """
        ...

    def read(self, key: str) -> bytes:
        """The bytes of a checkpoint; raises ``_Unreadable`` saying why not."""
        ...

    def delete(self, keys: list[str]) -> None: ...

    def write(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` whole (a reader never sees half of it)."""
        ...

    def location(self, key: str) -> str:
        """Where ``key`` is, for messages: a path or an ``s3://`` URL."""
        ...


class _FileStore:
    def __init__(self, backend: Backend) -> None:
        assert backend.path is not None
        self._root = backend.path / _BOOKKEEPING_DIR

    def keys(self, prefix: str) -> list[str]:
        top = self._root / prefix

        def unlistable(error: OSError) -> None:
            # A folder that is not there (never written, or removed meanwhile by another
            # run) holds nothing. One that cannot be listed is unknown state, never
            # empty: ``Path.rglob`` would skip it, and a stack behind it look absent.
            if isinstance(error, FileNotFoundError):
                return
            raise OperationError(
                f"cannot list the state in {error.filename}: {error.strerror}"
            ) from error

        return sorted(
            (Path(folder) / name).relative_to(self._root).as_posix()
            for folder, _, files in os.walk(top, onerror=unlistable)
            for name in files
        )

    def named(self, prefix: str) -> list[str]:
        folder, _, start = prefix.rpartition("/")
        try:
            names = os.listdir(self._root / folder)
        except FileNotFoundError:
            return []  # nothing was ever written there
        except OSError as error:
            raise OperationError(
                f"cannot list the state in {self._root / folder}: {error.strerror}"
            ) from error
        inside = f"{folder}/" if folder else ""
        return sorted(inside + name for name in names if name.startswith(start))

    def checkpoints(self) -> list[_Entry]:
        top = self._root / _STACKS_DIR
        try:
            children = sorted(os.scandir(top), key=lambda child: child.name)
        except FileNotFoundError:
            return []  # nothing was ever deployed with this backend
        except OSError as error:
            raise OperationError(f"cannot list the state in {top}: {error.strerror}") from error
        keys: list[str] = []
        failed: list[_Entry] = []
        for child in children:
            if not child.is_dir():
                keys.append(_STACKS_DIR + child.name)
                continue
            try:
                names = sorted(os.listdir(child.path))
            except OSError as error:
                reason = f"cannot list the folder: {error.strerror}"
                failed.append(_Entry(f"{_STACKS_DIR}{child.name}/", error=reason))
                continue
            keys.extend(f"{_STACKS_DIR}{child.name}/{name}" for name in names)
        return _checkpoint_entries(keys) + failed

    def read(self, key: str) -> bytes:
        try:
            return (self._root / key).read_bytes()
        except OSError as error:
            raise _Unreadable(f"cannot read it: {error.strerror}") from error

    def location(self, key: str) -> str:
        return str(self._root / key)

    def write(self, key: str, data: bytes) -> None:
        path = self._root / key
        try:
            make_private_dir(path.parent)
            write_private_file(path, data)
        except OSError as error:
            raise OperationError(f"cannot write {path}: {error.strerror}") from error

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
        where = f"s3://{self._bucket}/{self._root}{prefix}"
        with translating_aws_errors(doing=f"cannot list the state in {where}"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._root + prefix
            )
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return sorted(key[len(self._root) :] for key in keys)

    def named(self, prefix: str) -> list[str]:
        depth = prefix.count("/")
        return [key for key in self.keys(prefix) if key.count("/") == depth]

    def checkpoints(self) -> list[_Entry]:
        return _checkpoint_entries(self.keys(_STACKS_DIR))

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._root + key)
            body: bytes = answer["Body"].read()
        except ClientError as error:
            detail = error.response.get("Error", {})
            raise _Unreadable(
                f"cannot read it: {detail.get('Code', '')}: {detail.get('Message', '')}"
            ) from error
        except BotoCoreError as error:
            raise _Unreadable(f"cannot read it: {error}") from error
        return body

    def location(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._root}{key}"

    def write(self, key: str, data: bytes) -> None:
        with translating_aws_errors(doing=f"cannot write {self.location(key)}"):
            self._client.put_object(Bucket=self._bucket, Key=self._root + key, Body=data)

    def delete(self, keys: list[str]) -> None:
        where = f"s3://{self._bucket}/{self._root}"
        with translating_aws_errors(doing=f"cannot delete state in {where}"):
            delete_s3_objects(
                self._client, self._bucket, [self._root + k for k in keys], refused="cannot delete"
            )


def _checkpoint_entries(keys: list[str]) -> list[_Entry]:
    """The checkpoint files among keys under ``stacks/``: ``<project>/<stack>.json*``
    or (legacy) ``<stack>.json*``; backups (``.json.bak``) and deeper keys are not."""
    return [
        _Entry(key)
        for key in keys
        if key[len(_STACKS_DIR) :].count("/") <= 1 and key.endswith(_CHECKPOINT_SUFFIXES)
    ]


def _store(backend: Backend) -> _Store:
    return _FileStore(backend) if backend.kind == "file" else _S3Store(backend)
