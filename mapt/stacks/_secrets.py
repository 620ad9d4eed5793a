"""How a stack's secrets are encrypted: a passphrase, or a cloud KMS key.

Pulumi encrypts secret config and secret outputs (SSH keys, passwords) in the state
with the stack's secrets provider. On a DIY backend the default provider is a
passphrase that every later run of the stack must know. mapt's rules:

- ``PULUMI_CONFIG_PASSPHRASE`` or ``PULUMI_CONFIG_PASSPHRASE_FILE`` set: Pulumi uses
  it as-is (the subprocess inherits the environment).
- A file backend and neither set: a random passphrase is created once in a file
  beside the state (mode 0600) and handed to Pulumi by path, so a first local run
  needs no setup and the secret never travels in an environment value or a log.
- An s3 backend and neither set: refuse, unless ``secrets_provider`` names a KMS
  (``awskms://...``); a passphrase kept on one CI runner would make the shared state
  unreadable to every other runner.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mapt.core import InputError, OperationError, PrerequisiteError, get_logger, register_secret
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
) -> SecretsSetup:
    """Decide how the stacks on ``backend`` encrypt secrets (see the module docstring)."""
    env = os.environ if environ is None else environ
    provider = validate_secrets_provider(secrets_provider)
    if provider is not None and provider != "passphrase":
        return SecretsSetup(provider=provider)
    if PASSPHRASE_ENV in env:
        register_secret(env[PASSPHRASE_ENV])
        return SecretsSetup(provider=provider)
    if env.get(PASSPHRASE_FILE_ENV):
        path = Path(env[PASSPHRASE_FILE_ENV]).expanduser()
        try:
            register_secret(path.read_text(encoding="utf-8").strip())
        except OSError as error:
            raise PrerequisiteError(
                f"{PASSPHRASE_FILE_ENV} names {str(path)!r}, which cannot be read: {error.strerror}"
            ) from error
        return SecretsSetup(provider=provider)
    if backend.kind == "file":
        assert backend.path is not None
        path = ensure_passphrase_file(backend.path / PASSPHRASE_FILE_NAME)
        return SecretsSetup(provider=provider, env={PASSPHRASE_FILE_ENV: str(path)})
    raise PrerequisiteError(
        f"the state backend {backend.url} needs a secrets passphrase or a KMS key",
        hint=(
            f"Set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV} (the same value for every run "
            "that shares this bucket), or pass --secrets-provider awskms://alias/NAME"
            "?region=REGION."
        ),
    )


def ensure_passphrase_file(path: Path) -> Path:
    """Return ``path``, creating it with a random passphrase (mode 0600) if absent.

    Parallel runs may race to create it: the file is written under a temporary name
    and linked into place, which fails if another run got there first; then that
    run's passphrase is the one used, so every run agrees.
    """
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
                _log.info("created the secrets passphrase file %s (keep it with the state)", path)
        except OSError as error:
            raise OperationError(
                f"cannot create the passphrase file {path}: {error.strerror}"
            ) from error
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
    _restrict(path)
    try:
        passphrase = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise OperationError(f"cannot read the passphrase file {path}: {error.strerror}") from error
    if not passphrase:
        raise OperationError(
            f"the passphrase file {path} is empty",
            hint="Restore it from a backup: the stacks in this state need the same passphrase.",
        )
    register_secret(passphrase)
    return path


def _restrict(path: Path) -> None:
    """Tighten a reused passphrase file that others can read back to 0600."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            path.chmod(0o600)
            _log.warning("passphrase file %s was readable by others; set it to 0600", path)
        except OSError:
            _log.warning("passphrase file %s is readable by others (mode %o)", path, mode)
