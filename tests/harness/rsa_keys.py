"""RSA keys for the in-process sandbox tests: generated once per process, distinct per test.

Every sandbox create makes its host's SSH key (and its bastion's) as the tls provider
does, RSA 4,096 bits (``mapt.targets.aws._sandbox``): about 0.4 s of CPU each, 16 s of
the sandbox tests' 90. What a test asserts of a key (its format and outputs, that EC2
got its public half, that a second create keeps it, that host and bastion have their
own) needs real keys that differ within the test, not fresh ones each test: with
``reuse_within_process`` in place, the n-th key a test asks for, of a given size and
exponent, is the n-th one this process made of them, made the first time it is needed.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

_made: dict[tuple[int, int], list[rsa.RSAPrivateKey]] = {}


def reuse_within_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until ``monkeypatch`` undoes it, ``rsa.generate_private_key`` hands out this
    process's keys, each once."""
    generate = rsa.generate_private_key
    handed: dict[tuple[int, int], int] = {}

    def next_key(public_exponent: int, key_size: int, backend: Any = None) -> rsa.RSAPrivateKey:
        shape = (public_exponent, key_size)
        made = _made.setdefault(shape, [])
        index = handed.get(shape, 0)
        handed[shape] = index + 1
        if index == len(made):
            made.append(generate(public_exponent=public_exponent, key_size=key_size))
        return made[index]

    monkeypatch.setattr(rsa, "generate_private_key", next_key)
