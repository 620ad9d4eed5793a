"""API tokens: created once, shown once, stored as salted hashes, checked in constant time.

A token reads ``mapt_<key id>_<secret>``. The key id is public (``token list`` shows
it) and finds the row; the secret is 256 random bits, of which only a salted scrypt
hash is kept. With that much randomness, guessing is hopeless whatever the hash costs,
so scrypt runs at a small cost: the hash's job is to make a leaked table useless, and
every request checks one. Names are unique among tokens that are not revoked.

Even a small scrypt is most of a request's CPU, and a client polling an execution sends
the same token many times a second, so each process remembers the secrets it has
verified (``_VerifiedSecrets``) and a later request with the same secret skips the hash.
That is safe because:

- the memo holds no secret: an entry is the row it was verified against (key id, salt,
  stored hash) and an HMAC-SHA-256 of the secret under a key drawn when the process
  starts, so a dump of the memo gives no token, and its fingerprints are worthless in
  any other process; testing guesses against one needs that key, and against 256 random
  bits guessing is as hopeless as it is against the stored hash;
- an entry answers only for the row it names: a re-issued hash or salt is another entry,
  and a different secret for the same row misses (``hmac.compare_digest``) and pays the
  full scrypt, as an unknown key id does, so timing still tells a wrong secret from an
  unknown key no better than before;
- every request still reads its row, so a revoked or expired token is refused on its
  next request, memo or not, and last_used_at is written as before;
- only a token accepted as active is remembered, and the memo keeps the most recently
  used few thousand (least recently used out first), behind a lock (requests run on
  threads).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from mapt.core import InputError, parse_duration
from mapt.service._database import Database
from mapt.service._errors import AuthenticationError, ConflictError, NotFoundError
from mapt.service._schema import api_tokens

TOKEN_PREFIX = "mapt"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DAYS = re.compile(r"([0-9]+)d")  # ASCII digits: int() takes any script's ("٣d")
# A token's public key id (``secrets.token_hex(6)``): a name of this shape would be
# another token's key id to ``revoke``, which takes either.
_KEY_ID_SIZE = 6
_KEY_ID = re.compile(f"[0-9a-f]{{{2 * _KEY_ID_SIZE}}}")
_SCRYPT = {"n": 2**11, "r": 8, "p": 1, "dklen": 32}
# last_used_at is written at most this often per token: a read is not a write each time.
_USE_RECORD_INTERVAL = timedelta(minutes=1)
_MAX_EXPIRY = timedelta(days=3650)


@dataclass(frozen=True)
class TokenRecord:
    """What the service knows of a token (never its secret)."""

    key_id: str
    name: str
    read_only: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def parse_expiry(text: str, *, flag: str = "--expires") -> timedelta:
    """A token's lifetime: ``30d`` (days), or a duration such as ``12h`` or ``1h30m``."""
    days = _DAYS.fullmatch(text.strip())
    lifetime = (
        timedelta(days=int(days.group(1)))
        if days
        else parse_duration(text, flag=flag, maximum=_MAX_EXPIRY)
    )
    if not lifetime:
        raise InputError(f"{flag} {text!r} must be longer than zero")
    if lifetime > _MAX_EXPIRY:
        raise InputError(f"{flag} {text!r} is longer than the limit of 3650d")
    return lifetime


def check_token_name(name: str) -> str:
    """``name`` when a new token may bear it, else an ``InputError`` saying why."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"token name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if _KEY_ID.fullmatch(name):
        raise InputError(
            f"token name {name!r} has the shape of a key id ({2 * _KEY_ID_SIZE} hexadecimal "
            "digits): revoke, which takes a name or a key id, could not tell them apart",
            hint="Pick a name with a letter beyond 'f', a '-', or another length.",
        )
    return name


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)


class _VerifiedSecrets:
    """The secrets this process has verified, as keyed fingerprints (never the secrets).

    ``(key id, salt, stored hash)`` -> HMAC-SHA-256 of the secret under a per-process
    random key; at most ``capacity`` entries, least recently used dropped first.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, bytes, bytes], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _fingerprint(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    def verified(self, row: tuple[str, bytes, bytes], secret: str) -> bool:
        """Whether ``secret`` is the one already verified against ``row``."""
        fingerprint = self._fingerprint(secret)
        with self._lock:
            remembered = self._entries.get(row)
            if remembered is not None:
                self._entries.move_to_end(row)
        return remembered is not None and hmac.compare_digest(remembered, fingerprint)

    def remember(self, row: tuple[str, bytes, bytes], secret: str) -> None:
        fingerprint = self._fingerprint(secret)
        with self._lock:
            self._entries[row] = fingerprint
            self._entries.move_to_end(row)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


# A few thousand active tokens polling at once is far beyond what one service sees.
_verified = _VerifiedSecrets(capacity=4096)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _record(row: sa.Row[tuple[object, ...]]) -> TokenRecord:
    mapping = row._mapping
    return TokenRecord(
        key_id=mapping["key_id"],
        name=mapping["name"],
        read_only=bool(mapping["read_only"]),
        created_at=mapping["created_at"],
        expires_at=mapping["expires_at"],
        revoked_at=mapping["revoked_at"],
        last_used_at=mapping["last_used_at"],
    )


def create_token(
    database: Database, name: str, *, read_only: bool = False, lifetime: timedelta | None = None
) -> tuple[TokenRecord, str]:
    """A new token named ``name``: its record, and the token itself (shown once)."""
    check_token_name(name)
    key_id = secrets.token_hex(_KEY_ID_SIZE)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    now = _now()
    row = {
        "key_id": key_id,
        "name": name,
        "salt": salt,
        "secret_hash": _hash(secret, salt),
        "read_only": read_only,
        "created_at": now,
        "expires_at": now + lifetime if lifetime else None,
        "revoked_at": None,
        "last_used_at": None,
    }
    with database.transaction() as connection:
        taken = connection.execute(
            sa.select(api_tokens.c.key_id).where(
                api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None)
            )
        ).first()
        if taken is not None:
            raise InputError(
                f"token name {name!r} is taken by token {taken.key_id}",
                hint=f"Revoke it first (mapt serve token revoke {name}) or pick another name.",
            )
        connection.execute(api_tokens.insert().values(**row))
    record = TokenRecord(
        key_id=key_id,
        name=name,
        read_only=read_only,
        created_at=now,
        expires_at=row["expires_at"],  # type: ignore[arg-type]
        revoked_at=None,
        last_used_at=None,
    )
    return record, f"{TOKEN_PREFIX}_{key_id}_{secret}"


def list_tokens(database: Database) -> list[TokenRecord]:
    """Every token, revoked and expired ones included, oldest first."""
    with database.transaction() as connection:
        rows = connection.execute(sa.select(api_tokens).order_by(api_tokens.c.created_at))
        return [_record(row) for row in rows]


def revoke_token(database: Database, name_or_key: str) -> TokenRecord:
    """Revoke the active token named ``name_or_key`` (or with that key id) from now on."""
    now = _now()
    with database.transaction() as connection:
        rows = connection.execute(
            sa.select(api_tokens).where(
                sa.or_(api_tokens.c.name == name_or_key, api_tokens.c.key_id == name_or_key),
                api_tokens.c.revoked_at.is_(None),
            )
        ).all()
        if not rows:
            raise NotFoundError(
                f"no active token is named {name_or_key!r}",
                hint="mapt serve token list shows every token.",
            )
        if len(rows) > 1:
            # A name of a key id's shape, made before such names were refused.
            named = next(row for row in rows if row.name == name_or_key)
            raise ConflictError(
                f"{name_or_key!r} is the name of token {named.key_id} and the key id of "
                "another token: nothing was revoked",
                hint=f"Revoke token {named.key_id} by its key id, or the other by its name.",
            )
        [row] = rows
        connection.execute(
            api_tokens.update().where(api_tokens.c.key_id == row.key_id).values(revoked_at=now)
        )
    record = _record(row)
    return TokenRecord(**{**record.__dict__, "revoked_at": now})


def authenticate(database: Database, presented: str) -> TokenRecord:
    """The record of the active token ``presented`` is, or ``AuthenticationError``.

    The message never repeats the presented value.
    """
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    now = _now()
    row = None
    if prefix == TOKEN_PREFIX and key_id and secret:
        with database.transaction() as connection:
            row = connection.execute(
                sa.select(api_tokens).where(api_tokens.c.key_id == key_id)
            ).first()
    # The hash is computed even for an unknown key, so timing does not tell them apart;
    # only a secret already verified against this very row skips it.
    salt = bytes(row.salt) if row is not None else b"\0" * 16
    expected = bytes(row.secret_hash) if row is not None else b""
    verified_against = (key_id, salt, expected)
    memoised = row is not None and _verified.verified(verified_against, secret)
    matches = memoised or hmac.compare_digest(_hash(secret, salt), expected)
    if row is None or not matches:
        raise AuthenticationError("the token is not valid")
    record = _record(row)
    state = record.state(now)
    if state != "active":
        raise AuthenticationError(f"token {record.name!r} is {state}")
    if not memoised:
        _verified.remember(verified_against, secret)
    last = record.last_used_at
    if last is None or now - last >= _USE_RECORD_INTERVAL:
        with database.transaction() as connection:
            connection.execute(
                api_tokens.update()
                .where(api_tokens.c.key_id == record.key_id)
                .values(last_used_at=now)
            )
    return record
