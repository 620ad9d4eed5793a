"""Pulumi's passphrase secrets provider, for engines that write checkpoints themselves.

The sandbox engine writes the state Pulumi would, so its secrets are encrypted the way
Pulumi's passphrase secrets manager does it (``pkg/secrets/passphrase`` and
``sdk/go/common/resource/config/crypt.go``): a key derived from the passphrase with
PBKDF2-SHA256 (1,000,000 iterations, an 8-byte random salt), AES-256-GCM with a
12-byte random nonce per value, written ``v1:<base64 nonce>:<base64 ciphertext>``. The
stack's ``secrets_providers`` state is ``{"salt": "v1:<base64 salt>:<"pulumi"
encrypted>}``, which is how a wrong passphrase is told from a right one. So the Pulumi
CLI reads what this writes, and the other way round.
"""

from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass

from mapt.core import OperationError

PROVIDER_TYPE = "passphrase"
_VERSION = "v1"
_ITERATIONS = 1_000_000
_KEY_BYTES = 32
_SALT_BYTES = 8
_NONCE_BYTES = 12
# What the salt state carries encrypted, to check a passphrase against (manager.go).
_CHECK_MESSAGE = b"pulumi"


class WrongPassphraseError(Exception):
    """The passphrase does not decrypt the stack's secrets."""


@functools.lru_cache(maxsize=8)
def _key(passphrase: str, salt: bytes) -> bytes:
    """PBKDF2's key (about a second of CPU: derived once per passphrase and salt)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=salt, iterations=_ITERATIONS
    )
    return kdf.derive(passphrase.encode())


@dataclass(frozen=True)
class PassphraseCrypter:
    """Encrypts and decrypts a stack's secret values; ``salt_state`` goes into its state."""

    key: bytes
    salt_state: str

    @classmethod
    def new(cls, passphrase: str) -> PassphraseCrypter:
        """A crypter with a new random salt, for a stack that has none yet."""
        salt = os.urandom(_SALT_BYTES)
        key = _key(passphrase, salt)
        check = _encrypt(key, _CHECK_MESSAGE)
        return cls(key, f"{_VERSION}:{base64.b64encode(salt).decode()}:{check}")

    @classmethod
    def from_state(cls, passphrase: str, salt_state: str) -> PassphraseCrypter:
        """The crypter of a stack's ``salt``; ``WrongPassphraseError`` if it does not fit."""
        version, _, rest = salt_state.partition(":")
        encoded_salt, _, check = rest.partition(":")
        if version != _VERSION or not check:
            raise OperationError(
                f"the stack's passphrase state {salt_state[:16]!r}... is malformed"
            )
        try:
            salt = base64.b64decode(encoded_salt, validate=True)
        except ValueError as error:
            raise OperationError("the stack's passphrase salt is not base64") from error
        key = _key(passphrase, salt)
        if _decrypt(key, check) != _CHECK_MESSAGE:
            raise WrongPassphraseError()
        return cls(key, salt_state)

    def encrypt(self, plaintext: str) -> str:
        return _encrypt(self.key, plaintext.encode())

    def decrypt(self, ciphertext: str) -> str:
        return _decrypt(self.key, ciphertext).decode()


def _encrypt(key: bytes, plaintext: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext, None)
    return f"{_VERSION}:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"


def _decrypt(key: bytes, ciphertext: str) -> bytes:
    """The plaintext; ``WrongPassphraseError`` when the key does not open it.

    Only a ciphertext that fails AES-GCM's authentication says the passphrase is
    another; one that is not base64, or whose nonce AES-GCM cannot take, is corrupt
    state (``OperationError``), which no passphrase would open.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    version, _, rest = ciphertext.partition(":")
    nonce, _, sealed = rest.partition(":")
    if version != _VERSION or not sealed:
        raise OperationError("a secret in the stack's state is not a v1 ciphertext")
    try:
        nonce_bytes = base64.b64decode(nonce, validate=True)
        sealed_bytes = base64.b64decode(sealed, validate=True)
    except ValueError as error:  # binascii.Error
        raise OperationError("a secret in the stack's state is not base64") from error
    try:
        return AESGCM(key).decrypt(nonce_bytes, sealed_bytes, None)
    except InvalidTag as error:
        raise WrongPassphraseError() from error
    except ValueError as error:
        raise OperationError(
            f"a secret in the stack's state has a {len(nonce_bytes)}-byte nonce, which "
            "AES-GCM cannot use"
        ) from error
