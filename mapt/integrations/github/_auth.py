"""How mapt authenticates to GitHub's REST API: a token, or a GitHub App installation.

Registering a runner needs a short-lived registration token, which only a caller that
may administer the repository's (or organization's) runners can mint; removing a runner
on ``destroy`` needs the same right. The default ``GITHUB_TOKEN`` of a workflow never
has it, so mapt takes either a personal access token (``GITHUB_TOKEN``/``GH_TOKEN``) or
a GitHub App (id, installation id, private key), whose installation tokens expire after
an hour and are not tied to a person.

Every credential is registered with ``mapt.core.register_secret`` the moment it is
known, so no log line can show it; the dataclasses keep it out of ``repr`` too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mapt.core import InputError, register_secret

APP_ID_FLAG = "--ghactions-app-id"
APP_INSTALLATION_ID_FLAG = "--ghactions-app-installation-id"
APP_PRIVATE_KEY_FLAG = "--ghactions-app-private-key"
TOKEN_ENV_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
# The variables that stand in for the App's flags (the CLI's MAPT_* of each flag), read
# when no App value is given: how `mapt serve` is handed its own GitHub App.
APP_ENV_VARS = {
    flag: "MAPT_" + flag.lstrip("-").replace("-", "_").upper()
    for flag in (APP_ID_FLAG, APP_INSTALLATION_ID_FLAG, APP_PRIVATE_KEY_FLAG)
}

# GitHub refuses an App JWT whose lifetime exceeds 10 minutes; "iat" is back-dated a
# minute to absorb clock drift between this machine and GitHub (GitHub's own advice).
JWT_BACKDATE_SECONDS = 60
JWT_LIFETIME_SECONDS = 9 * 60
# Larger than any PEM RSA key; a bigger file was passed by mistake (and is not read).
_MAX_KEY_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class TokenAuth:
    """A bearer token: a personal access token (classic or fine-grained) or an App token.

    ``source`` says where it came from (``GITHUB_TOKEN``, a flag, ...) so that a refusal
    can tell the user which token to fix without showing it.
    """

    kind: ClassVar[str] = "token"

    token: str = field(repr=False)
    source: str = "the given token"

    def __post_init__(self) -> None:
        token = self.token.strip()
        if not token or any(ch.isspace() or not ch.isprintable() for ch in token):
            raise InputError(
                f"the GitHub token from {self.source} is empty or contains spaces or "
                "control characters"
            )
        object.__setattr__(self, "token", token)
        register_secret(token)

    def describe(self) -> str:
        """How messages name these credentials: ``the token from GITHUB_TOKEN``."""
        return f"the token from {self.source}"


@dataclass(frozen=True)
class AppAuth:
    """A GitHub App installation: mapt signs a JWT and exchanges it for an access token.

    The private key file is read and checked when the object is built, so a wrong path
    or a file that is not an RSA private key fails with exit code 2 before anything is
    created. The key itself is never printed, logged or shown in ``repr``.
    """

    kind: ClassVar[str] = "GitHub App"

    app_id: int
    installation_id: int
    private_key_path: Path
    _signing_key: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_id(APP_ID_FLAG, self.app_id)
        _check_id(APP_INSTALLATION_ID_FLAG, self.installation_id)
        path = Path(self.private_key_path).expanduser()
        object.__setattr__(self, "private_key_path", path)
        object.__setattr__(self, "_signing_key", _load_private_key(path))

    def describe(self) -> str:
        """How messages name these credentials: ``GitHub App 1 (installation 2)``."""
        return f"GitHub App {self.app_id} (installation {self.installation_id})"

    def app_jwt(self, now: float | None = None) -> str:
        """A JWT that authenticates as the App itself, valid for 9 minutes (RS256)."""
        import jwt

        issued = int(time.time() if now is None else now) - JWT_BACKDATE_SECONDS
        claims = {
            "iat": issued,
            "exp": issued + JWT_BACKDATE_SECONDS + JWT_LIFETIME_SECONDS,
            "iss": str(self.app_id),
        }
        token = jwt.encode(claims, self._signing_key, algorithm="RS256")
        register_secret(token)
        return token


GitHubAuth = TokenAuth | AppAuth
"""The credentials a ``GitHubClient`` uses: a plain token or a GitHub App installation."""


def resolve_auth(
    *,
    token: str | None = None,
    token_source: str = "the given token",
    app_id: int | str | None = None,
    installation_id: int | str | None = None,
    private_key_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> GitHubAuth | None:
    """The credentials to manage runners with, or None when nothing is available.

    Order, as in the Go mapt: the GitHub App (all three ``--ghactions-app-*`` values,
    which go together; when none is given, their ``MAPT_GHACTIONS_APP_*`` variables in
    ``env``, as the service reads its own App), then ``token`` (named ``token_source``
    in messages), then ``GITHUB_TOKEN``, then ``GH_TOKEN``. Empty strings count as not
    given, as an unset ``MAPT_*`` variable would be. ``destroy`` uses the None answer
    to say it cannot deregister the runner and carries on removing the machine.
    """
    env = os.environ if env is None else env
    app_values: dict[str, int | str | Path | None] = {
        APP_ID_FLAG: app_id,
        APP_INSTALLATION_ID_FLAG: installation_id,
        APP_PRIVATE_KEY_FLAG: private_key_path,
    }
    if all(value in (None, "") for value in app_values.values()):
        app_values = {APP_ENV_VARS[flag]: env.get(APP_ENV_VARS[flag]) for flag in app_values}
    given = {flag: value for flag, value in app_values.items() if value not in (None, "")}
    if given:
        missing = [flag for flag in app_values if flag not in given]
        if missing:
            raise InputError(f"{', '.join(app_values)} go together; missing: {', '.join(missing)}")
        (id_name, id_value), (installation_name, installation_value), (_, key_path) = (
            app_values.items()
        )
        return AppAuth(
            app_id=_parse_id(id_name, id_value),
            installation_id=_parse_id(installation_name, installation_value),
            private_key_path=Path(str(key_path)),
        )
    if token:
        return TokenAuth(token, source=token_source)
    for name in TOKEN_ENV_VARS:
        if env.get(name, "").strip():
            return TokenAuth(env[name], source=name)
    return None


def _parse_id(flag: str, value: object) -> int:
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise InputError(f"{flag} {value!r} is not a positive whole number")
    return int(text)


def _check_id(flag: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{flag} {value!r} is not a positive whole number")


def _load_private_key(path: Path) -> Any:
    """Read and parse the App's PEM key; every failure names the path, never the content."""
    import jwt
    from jwt.algorithms import RSAAlgorithm

    flag = APP_PRIVATE_KEY_FLAG
    try:
        if path.stat().st_size > _MAX_KEY_FILE_BYTES:
            raise InputError(f"{flag} {str(path)!r} is too large to be a PEM private key")
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise InputError(f"{flag} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{flag} {str(path)!r} is a directory, not a PEM key file") from None
    except PermissionError:
        raise InputError(f"{flag} {str(path)!r} cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise InputError(f"{flag} {str(path)!r} is not a PEM file (it is binary)") from None
    except OSError as exc:
        raise InputError(f"{flag} {str(path)!r} cannot be read ({exc.strerror})") from None
    register_secret(text.strip())
    bad_key = InputError(
        f"{flag} {str(path)!r} is not an unencrypted RSA private key in PEM format",
        hint="Use the .pem file downloaded from the GitHub App's settings page.",
    )
    if "PRIVATE KEY-----" not in text:
        raise bad_key
    try:
        key: Any = RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(text)
        # A public key parses too; only a private key can sign.
        jwt.encode({"iss": "mapt-key-check"}, key, algorithm="RS256")
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        raise bad_key from None
    return key
