"""How a stack's secrets are encrypted: a passphrase, or a cloud KMS key.

Pulumi encrypts secret config and secret outputs (SSH keys, passwords) in the state
with the stack's secrets provider. On a DIY backend the default provider is a
passphrase that every later run of the stack must know. mapt's rules:

- ``PULUMI_CONFIG_PASSPHRASE`` set: Pulumi uses it as-is (the subprocess inherits the
  environment).
- ``PULUMI_CONFIG_PASSPHRASE_FILE`` set: its path, ``~`` expanded and made absolute in
  mapt's working directory, is the file mapt checks and the one handed to Pulumi, which
  runs in a temporary workspace directory and expands no ``~`` (it would look for a
  relative path there, and fail).
- A file backend and neither set: a random passphrase is created once in a file
  beside the state (mode 0600) and handed to Pulumi by path, so a first local run
  needs no setup and the secret never travels in an environment value or a log.
  Never for a backend that already holds stacks: they were encrypted with another
  passphrase, and a new one would only make Pulumi fail later.
- A passphrase file (mapt's or the one ``PULUMI_CONFIG_PASSPHRASE_FILE`` names) must
  belong to the current user and be closed to group and others, or it is refused:
  whoever can read it can decrypt the state, whoever can write it can swap it.
- An s3 backend and neither set: refuse, unless ``secrets_provider`` names a KMS
  (``awskms://...``); a passphrase kept on one CI runner would make the shared state
  unreadable to every other runner.
"""

from __future__ import annotations

import os
import pwd
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mapt.core import (
    InputError,
    OperationError,
    PrerequisiteError,
    get_logger,
    make_private_dir,
    register_secret,
    write_private_file,
)
from mapt.stacks._backend import Backend

_log = get_logger(__name__)

PASSPHRASE_ENV = "PULUMI_CONFIG_PASSPHRASE"
PASSPHRASE_FILE_ENV = "PULUMI_CONFIG_PASSPHRASE_FILE"
# Beside ``.pulumi`` in a file backend's directory.
PASSPHRASE_FILE_NAME = "mapt-passphrase"

# Secrets providers Pulumi accepts besides the passphrase (``pulumi stack init
# --secrets-provider``): cloud key services addressed by URL.
_KMS_SCHEMES = ("awskms://", "azurekeyvault://", "gcpkms://", "hashivault://")


@dataclass(frozen=True)
class SecretsSetup:
    """What the Pulumi CLI needs for secrets: a provider for new stacks, extra env vars."""

    provider: str | None
    env: Mapping[str, str] = field(default_factory=dict)


def validate_secrets_provider(value: str | None) -> str | None:
    """Return ``value`` if Pulumi can use it as a secrets provider, else raise ``InputError``."""
    if value is None or value == "passphrase":
        return value
    for scheme in _KMS_SCHEMES:
        if value.startswith(scheme):
            if len(value) == len(scheme):
                raise InputError(f"secrets provider {value!r} names no key")
            return value
    raise InputError(
        f"secrets provider {value!r} is not supported: use passphrase, awskms://KEY, "
        "azurekeyvault://..., gcpkms://... or hashivault://..."
    )


def secrets_setup(
    backend: Backend,
    secrets_provider: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    provider_flag: str = "--secrets-provider",
) -> SecretsSetup:
    """Decide how the stacks on ``backend`` encrypt secrets (see the module docstring).
    ``provider_flag`` is the flag the refusal's hint names for a KMS key."""
    env = os.environ if environ is None else environ
    provider = validate_secrets_provider(secrets_provider)
    if provider is not None and provider != "passphrase":
        return SecretsSetup(provider=provider)
    if PASSPHRASE_ENV in env:
        register_secret(env[PASSPHRASE_ENV])
        return SecretsSetup(provider=provider)
    if env.get(PASSPHRASE_FILE_ENV):
        # Cleaned as Go's filepath.Abs cleans it, so the CLI opens the very name checked.
        path = Path(os.path.abspath(Path(env[PASSPHRASE_FILE_ENV]).expanduser()))
        register_secret(read_passphrase_file(path, named_by=PASSPHRASE_FILE_ENV))
        return SecretsSetup(provider=provider, env={PASSPHRASE_FILE_ENV: str(path)})
    if backend.kind == "file":
        path = ensure_passphrase_file(backend)
        return SecretsSetup(provider=provider, env={PASSPHRASE_FILE_ENV: str(path)})
    raise PrerequisiteError(
        f"the state backend {backend.url} needs a secrets passphrase or a KMS key",
        hint=(
            f"Set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV} (the same value for every run "
            f"that shares this bucket), or pass {provider_flag} awskms://alias/NAME"
            "?region=REGION."
        ),
    )


def another_passphrase_error(backend_url: str, *, hint: str | None = None) -> PrerequisiteError:
    """The error for stacks that the passphrase at hand cannot decrypt (exit 5)."""
    return PrerequisiteError(
        f"this backend's stacks ({backend_url}) were encrypted with another passphrase; "
        f"set {PASSPHRASE_ENV}[_FILE]",
        hint=hint
        or (
            f"Give {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV} the passphrase they were "
            f"created with (mapt keeps it in {PASSPHRASE_FILE_NAME} beside a local state), "
            "or pass --secrets-provider if they use a KMS key."
        ),
    )


def ensure_passphrase_file(backend: Backend) -> Path:
    """The file backend's passphrase file, created with a random passphrase if absent.

    It is not created for a backend that already holds stacks (``PrerequisiteError``):
    their passphrase is elsewhere, or lost, and a new one cannot read them. Parallel
    runs may race to create it: the file is written under a temporary name and linked
    into place, which fails if another run got there first; then that run's
    passphrase is the one used, so every run agrees.
    """
    assert backend.path is not None
    path = backend.path / PASSPHRASE_FILE_NAME
    if not os.path.lexists(path):
        if _holds_stacks(backend):
            raise another_passphrase_error(
                backend.url,
                hint=(
                    f"Its passphrase file {path} is missing: restore it from a backup, or "
                    f"set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV} to the passphrase the "
                    "stacks were created with (or pass --secrets-provider for a KMS key)."
                ),
            )
        _create_passphrase_file(path)
    passphrase = read_passphrase_file(path)
    if not passphrase:
        raise OperationError(
            f"the passphrase file {path} is empty",
            hint="Restore it from a backup: the stacks in this state need the same passphrase.",
        )
    register_secret(passphrase)
    return path


def read_passphrase_file(path: Path, *, named_by: str | None = None) -> str:
    """The passphrase in ``path``, once it is known to be private to the current user.

    A file of another user, or one that group or others may read or write, is refused
    (``PrerequisiteError``, exit 5) rather than tightened: its secret may already be
    known, or swapped. The checks are made on the opened file, not on the name.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            _check_private(path, os.fstat(handle.fileno()))
            return handle.read().strip()
    except OSError as error:
        what = (
            f"{named_by} names {str(path)!r}, which" if named_by else f"the passphrase file {path}"
        )
        raise PrerequisiteError(f"{what} cannot be read: {error.strerror}") from error


def _check_private(path: Path, status: os.stat_result) -> None:
    me = os.geteuid()
    if status.st_uid != me:
        raise PrerequisiteError(
            f"the passphrase file {path} belongs to {_user(status.st_uid)}, not to you "
            f"({_user(me)})",
            hint=(
                f"Whoever owns it can read or replace it: if it is yours, take it back with "
                f"'chown {_user(me)} {path}' (as root) and 'chmod 600 {path}'."
            ),
        )
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077:
        raise PrerequisiteError(
            f"the passphrase file {path} is open to group or others (mode {mode:04o})",
            hint=f"Make it private with 'chmod 600 {path}'.",
        )


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _holds_stacks(backend: Backend) -> bool:
    """Whether the backend may hold stacks: any checkpoint, or a stacks folder it cannot
    list (the state reader's own rule of what a checkpoint is; unknown is not empty)."""
    from mapt.stacks._inventory import _store

    return bool(_store(backend).checkpoints())


def _create_passphrase_file(path: Path) -> None:
    """Write a new random passphrase to ``path`` (0600), unless another run just did."""
    try:
        make_private_dir(path.parent)
        passphrase = (secrets.token_urlsafe(32) + "\n").encode()
        if write_private_file(path, passphrase, replace=False):
            _log.info("created the secrets passphrase file %s (keep it with the state)", path)
    except OSError as error:
        raise OperationError(
            f"cannot create the passphrase file {path}: {error.strerror}"
        ) from error


def passphrase_of(setup: SecretsSetup, environ: Mapping[str, str] | None = None) -> str:
    """The passphrase ``setup`` tells Pulumi to use, for an engine that encrypts itself.

    As Pulumi reads it: ``PULUMI_CONFIG_PASSPHRASE`` as-is, else the file ``setup``
    names (the caller's ``PULUMI_CONFIG_PASSPHRASE_FILE`` as ``secrets_setup`` resolved
    it, or the one it made: the path the Pulumi CLI is given), checked private and
    stripped. A KMS secrets provider is refused (``InputError``): such an engine
    encrypts with a passphrase only.
    """
    if setup.provider is not None and setup.provider != "passphrase":
        raise InputError(
            f"secrets provider {setup.provider!r} cannot be used here: only a passphrase can "
            "encrypt this engine's state",
            hint=f"Leave out --secrets-provider, or set {PASSPHRASE_ENV}.",
        )
    env = os.environ if environ is None else environ
    if PASSPHRASE_ENV in env:
        return env[PASSPHRASE_ENV]
    named = setup.env.get(PASSPHRASE_FILE_ENV)
    if not named:  # secrets_setup never returns without one of the two
        raise PrerequisiteError(f"no passphrase: set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV}")
    return read_passphrase_file(Path(named), named_by=PASSPHRASE_FILE_ENV)
