"""State backends: parsing ``--backed-url``, the local default, and stale lock removal.

mapt keeps Pulumi state in a self-managed ("DIY") backend: a local directory
(``file://PATH``) or an S3 prefix (``s3://bucket/prefix``). The URL is parsed once, up
front, so a typo fails with exit code 2 before any AWS or Pulumi call. Without a URL,
state goes to a directory under the user's data directory, so a first run needs no
bucket and no Pulumi account.

Locks: a DIY backend writes one JSON file per running operation under
``.pulumi/locks/organization/<project>/<stack>/<uuid>.json`` (project-scoped layout,
Pulumi >= 3.61; ``.pulumi/locks/<stack>/`` in the legacy layout). A run that was
killed (a cancelled CI job) leaves its file behind and every later run of that stack
fails as "locked". ``remove_locks`` deletes exactly those files for one stack, which is
what ``--force-destroy`` needs, and nothing else.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from mapt.core import (
    InputError,
    OperationError,
    get_logger,
    make_private_dir,
    translating_aws_errors,
    without_password,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_log = get_logger(__name__)

# Where Pulumi keeps its bookkeeping inside a DIY backend (workspace.BookkeepingDir,
# workspace.LockDir in pulumi/sdk/go/common/workspace).
_LOCKS_DIR = ".pulumi/locks"
# The only organization a project-scoped DIY backend accepts (diy/store.go).
_DIY_ORG = "organization"

# S3 bucket naming rules (S3 User Guide, "General purpose bucket naming rules").
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

_SUPPORTED = "use file://PATH or s3://BUCKET[/PREFIX]"


@dataclass(frozen=True)
class Backend:
    """A parsed state backend URL.

    ``url`` is the canonical form handed to Pulumi (a file backend's path made
    absolute, so a run from another working directory finds the same state).
    ``path`` is set for file backends; ``bucket``, ``prefix`` (no leading or trailing
    ``/``) and ``params`` (the URL's query, e.g. ``region``, ``endpoint``) for s3.
    """

    kind: Literal["file", "s3"]
    url: str
    path: Path | None = None
    bucket: str | None = None
    prefix: str = ""
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def lock_dirs(self, project: str, stack_name: str) -> list[str]:
        """Backend-relative directories that hold this stack's lock files.

        The project-scoped layout first; the legacy layout (state written before
        Pulumi 3.61, or by an old mapt) second. Stack names always contain a ``-``
        (``<name>-<project>``), so a legacy stack directory can never be the
        ``organization`` directory of the project-scoped layout.
        """
        return [
            f"{_LOCKS_DIR}/{_DIY_ORG}/{project}/{stack_name}",
            f"{_LOCKS_DIR}/{stack_name}",
        ]


def parse_backend_url(text: str) -> Backend:
    """Parse and validate a ``--backed-url`` value; raise ``InputError`` naming it if bad."""
    value = text.strip()
    if not value:
        raise InputError("backend URL is empty", hint=f"Pass --backed-url and {_SUPPORTED}.")
    echoed = without_password(text)  # how the messages show it
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise InputError(f"backend URL {echoed!r} has no scheme; {_SUPPORTED}")
    scheme = scheme.lower()
    if scheme == "file":
        return _parse_file(echoed, rest)
    if scheme == "s3":
        return _parse_s3(echoed, value)
    raise InputError(f"backend URL {echoed!r} is not supported; {_SUPPORTED}")


def _parse_file(text: str, rest: str) -> Backend:
    if not rest:
        raise InputError(f"backend URL {text!r} has no path; {_SUPPORTED}")
    if "?" in rest or "#" in rest:
        raise InputError(f"backend URL {text!r}: a file backend takes no query or fragment")
    path = Path(os.path.expanduser(rest)).absolute()
    return Backend(kind="file", url=f"file://{path}", path=path)


def _parse_s3(text: str, value: str) -> Backend:
    parts = urlsplit(value)
    if "@" in parts.netloc:
        # Credentials never travel in a URL: they would land in logs and state.
        raise InputError(
            "the s3 backend URL contains '@' (user or credentials); "
            "pass AWS credentials through the environment instead"
        )
    bucket = parts.netloc
    if not bucket:
        raise InputError(f"backend URL {text!r} names no bucket; {_SUPPORTED}")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InputError(f"backend URL {text!r}: {bucket!r} is not a valid S3 bucket name")
    if parts.fragment:
        raise InputError(f"backend URL {text!r}: an s3 backend takes no fragment")
    prefix = parts.path.strip("/")
    if "//" in prefix:
        raise InputError(f"backend URL {text!r} has an empty path segment")
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    url = f"s3://{bucket}" + (f"/{prefix}" if prefix else "")
    if parts.query:
        url += f"?{parts.query}"
    return Backend(kind="s3", url=url, bucket=bucket, prefix=prefix, params=params)


def default_backend_dir() -> Path:
    """Where state goes when no backend URL is given: ``<user data dir>/mapt/pulumi``.

    ``MAPT_STATE_DIR`` overrides it (tests, or a machine whose home is read-only).
    """
    override = os.environ.get("MAPT_STATE_DIR")
    if override:
        return Path(os.path.expanduser(override)).absolute()
    from platformdirs import user_data_path

    return user_data_path("mapt", appauthor=False) / "pulumi"


def resolve_backend(url: str | None) -> Backend:
    """The backend for a stack: ``url`` parsed, or the local default when it is None."""
    if url is None:
        path = default_backend_dir()
        return Backend(kind="file", url=f"file://{path}", path=path)
    return parse_backend_url(url)


def prepare_backend(backend: Backend) -> None:
    """Make a file backend's directory exist (private to the user), as Pulumi needs it."""
    if backend.path is None:
        return
    try:
        make_private_dir(backend.path)
    except OSError as error:
        raise OperationError(
            f"cannot create the state directory {backend.path}: {error.strerror}"
        ) from error


# -- locks --------------------------------------------------------------------------


def list_locks(backend: Backend, project: str, stack_name: str) -> list[str]:
    """This stack's lock entries (as URLs), without removing them."""
    return _locks(backend, project, stack_name, remove=False)


def remove_locks(backend: Backend, project: str, stack_name: str) -> list[str]:
    """Delete this stack's lock entries and return them (as URLs); others are untouched."""
    return _locks(backend, project, stack_name, remove=True)


def _locks(backend: Backend, project: str, stack_name: str, *, remove: bool) -> list[str]:
    if backend.kind == "file":
        return _file_locks(backend, project, stack_name, remove=remove)
    return _s3_locks(backend, project, stack_name, remove=remove)


def _file_locks(backend: Backend, project: str, stack_name: str, *, remove: bool) -> list[str]:
    assert backend.path is not None
    found: list[str] = []
    for relative in backend.lock_dirs(project, stack_name):
        directory = backend.path / relative
        try:
            if not directory.is_dir():
                continue  # no run ever locked this stack
            # Only the lock files themselves; a directory here is another layout's tree.
            entries = [
                entry
                for entry in sorted(directory.iterdir())
                if entry.suffix == ".json" and entry.is_file()
            ]
        except OSError as error:
            # Unknown locks are never reported as no locks (list_backend_locks' rule).
            reason = error.strerror
            raise OperationError(f"cannot list the locks in {directory}: {reason}") from error
        for entry in entries:
            if remove:
                try:
                    entry.unlink()
                except FileNotFoundError:
                    continue  # its run ended and unlocked meanwhile
                except OSError as error:
                    raise OperationError(
                        f"cannot remove the lock file {entry}: {error.strerror}"
                    ) from error
                _log.info("removed lock %s", entry)
            found.append(f"file://{entry}")
    return found


def _s3_locks(backend: Backend, project: str, stack_name: str, *, remove: bool) -> list[str]:
    assert backend.bucket is not None
    client = s3_client(backend)
    found: list[str] = []
    with translating_aws_errors(bucket=backend.bucket):
        for relative in backend.lock_dirs(project, stack_name):
            key_prefix = f"{backend.prefix}/{relative}/" if backend.prefix else f"{relative}/"
            keys = [
                obj["Key"]
                for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=backend.bucket, Prefix=key_prefix
                )
                for obj in page.get("Contents", [])
                # Direct children only: deeper keys belong to other stacks' trees.
                if "/" not in obj["Key"][len(key_prefix) :] and obj["Key"].endswith(".json")
            ]
            if remove:
                delete_s3_objects(client, backend.bucket, keys, refused="cannot remove the lock")
                for key in keys:
                    _log.info("removed lock s3://%s/%s", backend.bucket, key)
            found.extend(f"s3://{backend.bucket}/{key}" for key in keys)
    return found


def delete_s3_objects(client: Any, bucket: str, keys: list[str], *, refused: str) -> None:
    """Delete ``keys`` from ``bucket``, 1000 per ``DeleteObjects`` (its limit).

    S3 answers a refused key inside a successful answer; the first one fails the
    deletion as ``OperationError`` ``<refused> s3://<bucket>/<key>: <code> <message>``.
    """
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        answer = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
        errors = answer.get("Errors", [])
        if errors:
            first = errors[0]
            raise OperationError(
                f"{refused} s3://{bucket}/{first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message')}"
            )


def list_backend_locks(backend: Backend) -> dict[str, tuple[str, ...]]:
    """Every lock entry in the backend (as URLs), by the directory holding it, in one listing.

    The keys are the backend-relative directories ``Backend.lock_dirs`` names, so a
    reader of many stacks asks once (one paginated ``ListObjectsV2`` on S3) instead of
    twice per stack. A listing that fails raises ``OperationError``: unknown locks are
    never reported as no locks.
    """
    found: dict[str, list[str]] = {}
    if backend.kind == "file":
        assert backend.path is not None
        root = backend.path / _LOCKS_DIR
        if not root.is_dir():
            return {}  # no run ever took a lock here

        def refuse(error: OSError) -> None:
            raise OperationError(
                f"cannot list the locks in {error.filename or root}: {error.strerror}"
            ) from error

        for directory, _, files in os.walk(root, onerror=refuse):
            relative = Path(directory).relative_to(backend.path).as_posix()
            for name in sorted(files):
                if name.endswith(".json"):
                    found.setdefault(relative, []).append(f"file://{Path(directory) / name}")
        return {key: tuple(entries) for key, entries in found.items()}
    assert backend.bucket is not None
    root_prefix = f"{backend.prefix}/" if backend.prefix else ""
    where = f"s3://{backend.bucket}/{root_prefix}{_LOCKS_DIR}"
    with translating_aws_errors(doing=f"cannot list the locks in {where}"):
        pages = (
            s3_client(backend)
            .get_paginator("list_objects_v2")
            .paginate(Bucket=backend.bucket, Prefix=f"{root_prefix}{_LOCKS_DIR}/")
        )
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    for key in sorted(keys):
        directory, _, name = key[len(root_prefix) :].rpartition("/")
        if name.endswith(".json"):
            found.setdefault(directory, []).append(f"s3://{backend.bucket}/{key}")
    return {key: tuple(entries) for key, entries in found.items()}


# S3 requests one reader may have in flight at once: every checkpoint is read in
# parallel, so 200 stacks take one round trip, not seven (urllib3 opens connections
# only as needed).
S3_MAX_CONNECTIONS = 256
_S3_CLIENTS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str, bool], S3Client]] = (
    weakref.WeakKeyDictionary()
)
_S3_CLIENTS_LOCK = threading.Lock()


def s3_client(backend: Backend) -> S3Client:
    """The boto3 S3 client for the backend, reading its query as Pulumi's S3 backend does.

    Pulumi's DIY backend (gocloud.dev's s3blob) reads ``region``, ``profile``,
    ``endpoint`` (an S3-compatible store: MinIO, Ceph, moto), path-style addressing
    (``s3ForcePathStyle`` or ``use_path_style``) and, for an endpoint without a
    scheme, ``disableSSL``/``disable_https`` to mean ``http://``. Reading the same
    parameters the same way, mapt reaches the bucket Pulumi does. Without
    ``endpoint``, ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` apply to both (botocore and
    the AWS SDK for Go read them). Credentials come from the environment.
    Building a client costs tens of milliseconds of CPU (service model, endpoint
    rules), so there is one per process and set of parameters: it is kept with
    boto3's default session (a fresh one, after ``boto3.setup_default_session``,
    starts afresh), made mapt's (``default_aws_session``: among others, its parallel
    HTTPS reads load the CA bundle once, not once per connection). boto3 clients are
    thread-safe; creating them is not, hence the lock.
    """
    from botocore.config import Config

    from mapt.core import aws_session, default_aws_session

    profile = backend.params.get("profile") or ""
    region = backend.params.get("region") or ""
    endpoint = backend.params.get("endpoint") or ""
    if endpoint and "://" not in endpoint:
        insecure = _true(backend.params, "disableSSL") or _true(backend.params, "disable_https")
        endpoint = ("http://" if insecure else "https://") + endpoint
    path_style = _true(backend.params, "s3ForcePathStyle") or _true(
        backend.params, "use_path_style"
    )
    key = (profile, region, endpoint, path_style)
    with _S3_CLIENTS_LOCK:
        default = default_aws_session()
        clients = _S3_CLIENTS.setdefault(default, {})
        client = clients.get(key)
        if client is None:
            session = aws_session(profile_name=profile) if profile else default
            client = session.client(
                "s3",
                region_name=region or None,
                endpoint_url=endpoint or None,
                config=Config(
                    retries={"mode": "standard"},
                    max_pool_connections=S3_MAX_CONNECTIONS,
                    s3={"addressing_style": "path"} if path_style else None,
                ),
            )
            clients[key] = client
    return client


def _true(params: Mapping[str, str], name: str) -> bool:
    """A boolean URL parameter, read as Go's strconv.ParseBool reads it."""
    return params.get(name, "").lower() in ("1", "t", "true")
