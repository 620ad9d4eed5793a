"""Fixtures for the CI integrations: a fake GitHub on 127.0.0.1, App keys, a loopback fence.

Every test here runs with GitHub's environment variables removed and with sockets
fenced to 127.0.0.0/8, so nothing can reach the real GitHub even by mistake (a default
URL left in a test would fail loudly instead).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.fake_github import FakeGitHub, FakeGitHubServer

GITHUB_ENV = ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_API_URL", "GITHUB_SERVER_URL")


def _is_loopback(host: Any) -> bool:
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any name lookup or connection that is not to the loopback network."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise AssertionError(f"test tried to resolve {host!r}, outside 127.0.0.0/8")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise AssertionError(f"test tried to connect to {address!r}, outside 127.0.0.0/8")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(autouse=True)
def no_github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in GITHUB_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mapt_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Any:
    """caplog sees every ``mapt`` record at DEBUG (mapt's own handler stops propagation)."""
    monkeypatch.setattr(logging.getLogger("mapt"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="mapt")
    return caplog


@pytest.fixture
def fake_github() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
def github(fake_github: FakeGitHub) -> Iterator[FakeGitHubServer]:
    """A fake GitHub REST API served on 127.0.0.1 at a random port."""
    with FakeGitHubServer(fake_github) as server:
        yield server


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class AppKey:
    private_pem: bytes
    public_pem: bytes


def _rsa_key() -> AppKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # what GitHub's download holds
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return AppKey(private, public)


@pytest.fixture(scope="session")
def app_key() -> AppKey:
    """The GitHub App's RSA key pair (generated once per session: 2048-bit keys are slow)."""
    return _rsa_key()


@pytest.fixture(scope="session")
def other_key() -> AppKey:
    """A second key pair: a private key GitHub does not know for the App."""
    return _rsa_key()


@pytest.fixture
def app_key_file(tmp_path: Path, app_key: AppKey) -> Path:
    path = tmp_path / "app.private-key.pem"
    path.write_bytes(app_key.private_pem)
    path.chmod(0o600)
    return path
