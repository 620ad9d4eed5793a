"""Readiness against a real sshd on 127.0.0.1: key accepted, cloud-init status respected."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from mapt.core import OperationError
from mapt.targets import SshAccess, SshEndpoint, load_private_key, wait_until_ready
from tests.harness.skips import needs_program
from tests.targets.sshd import SSHD, KeyPair, SshServer, new_rsa_key

pytestmark = needs_program(SSHD)


@pytest.fixture(scope="module")
def keys() -> dict[str, KeyPair]:
    return {"host": new_rsa_key(), "bastion": new_rsa_key(), "stranger": new_rsa_key()}


@pytest.fixture
def sshd(tmp_path: Path, keys: dict[str, KeyPair]) -> Iterator[SshServer]:
    server = SshServer(tmp_path, [keys["host"].public_openssh, keys["bastion"].public_openssh])
    yield server
    server.stop()


def endpoint(server: SshServer, key: KeyPair, port: int | None = None) -> SshEndpoint:
    return SshEndpoint("127.0.0.1", server.user, key.private_pem, port or server.port)


def test_ready_when_the_key_is_accepted_and_cloud_init_is_done(
    sshd: SshServer, keys: dict[str, KeyPair]
) -> None:
    wait_until_ready(SshAccess(endpoint(sshd, keys["host"])), timeout=20, poll_interval=0.2)
    assert sshd.cloud_init_calls() == ["status --wait"]


def test_a_wrong_key_times_out_with_an_error_naming_host_and_cause(
    sshd: SshServer, keys: dict[str, KeyPair]
) -> None:
    access = SshAccess(endpoint(sshd, keys["stranger"]))
    started = time.monotonic()
    with pytest.raises(OperationError) as caught:
        wait_until_ready(access, timeout=1.5, poll_interval=0.2)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"host {sshd.user}@127.0.0.1:{sshd.port} was not ready after 1.5 s" in message
    assert f"refused the key for user {sshd.user!r}" in message
    assert sshd.cloud_init_calls() == []


def test_a_cloud_init_error_fails_at_once_with_its_status(
    sshd: SshServer, keys: dict[str, KeyPair]
) -> None:
    sshd.set_cloud_init(1, "status: error")
    started = time.monotonic()
    with pytest.raises(OperationError) as caught:
        wait_until_ready(SshAccess(endpoint(sshd, keys["host"])), timeout=60, poll_interval=0.2)
    assert time.monotonic() - started < 15  # not waiting out the timeout
    assert "`cloud-init status --wait` on host" in str(caught.value)
    assert "exited 1: status: error" in str(caught.value)
    assert sshd.cloud_init_calls() == ["status --wait"]


def test_cloud_init_done_with_recoverable_errors_is_ready(
    sshd: SshServer, keys: dict[str, KeyPair], caplog: pytest.LogCaptureFixture
) -> None:
    sshd.set_cloud_init(2, "status: degraded done")
    with caplog.at_level(logging.WARNING, logger="mapt"):
        wait_until_ready(SshAccess(endpoint(sshd, keys["host"])), timeout=20, poll_interval=0.2)
    assert "recoverable errors" in caplog.text


def test_windows_readiness_is_the_key_alone(sshd: SshServer, keys: dict[str, KeyPair]) -> None:
    sshd.set_cloud_init(1, "would fail")
    access = SshAccess(endpoint(sshd, keys["host"]), wait_for_cloud_init=False)
    wait_until_ready(access, timeout=20, poll_interval=0.2)
    assert sshd.cloud_init_calls() == []


def test_through_the_bastion(sshd: SshServer, keys: dict[str, KeyPair]) -> None:
    access = SshAccess(endpoint(sshd, keys["host"]), bastion=endpoint(sshd, keys["bastion"]))
    wait_until_ready(access, timeout=20, poll_interval=0.2)
    assert sshd.cloud_init_calls() == ["status --wait"]


def test_a_bastion_refusing_the_key_is_named(sshd: SshServer, keys: dict[str, KeyPair]) -> None:
    access = SshAccess(endpoint(sshd, keys["host"]), bastion=endpoint(sshd, keys["stranger"]))
    with pytest.raises(OperationError) as caught:
        wait_until_ready(access, timeout=1.5, poll_interval=0.2)
    assert f"bastion {sshd.user}@127.0.0.1:{sshd.port} refused the key" in str(caught.value)


def test_the_host_is_reached_from_the_bastion_not_directly(
    sshd: SshServer, keys: dict[str, KeyPair]
) -> None:
    # The bastion may forward only to its own port: any other target port must fail in
    # the bastion, which shows readiness connects through it.
    other_port = sshd.port + 1 if sshd.port < 65535 else sshd.port - 1
    access = SshAccess(
        endpoint(sshd, keys["host"], port=other_port), bastion=endpoint(sshd, keys["bastion"])
    )
    with pytest.raises(OperationError, match="the bastion could not open a connection to host"):
        wait_until_ready(access, timeout=1.5, poll_interval=0.2)


class FirstConnectionOnly:
    """A loopback port that relays its first connection to ``port``, then hangs.

    Later connections are accepted by the kernel (the listen backlog) but never get a
    byte, like a host that stops answering: an SSH attempt there waits out its time.
    """

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=8)
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._relay_first, args=(port,), daemon=True).start()

    def _relay_first(self, port: int) -> None:
        with suppress(OSError):
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", port))
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
            _pump(client, upstream)

    def close(self) -> None:
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def test_a_last_attempt_the_deadline_cuts_short_does_not_hide_why_it_failed(
    sshd: SshServer, keys: dict[str, KeyPair]
) -> None:
    # The first attempt is refused the key; the next one hangs until the deadline. The
    # error names the refusal: the hang's timeout is the deadline's, not the host's (on
    # a loaded machine any last attempt may be cut short like this one).
    relay = FirstConnectionOnly(sshd.port)
    try:
        access = SshAccess(endpoint(sshd, keys["stranger"], port=relay.port))
        with pytest.raises(OperationError) as caught:
            wait_until_ready(access, timeout=4, poll_interval=0.2)
    finally:
        relay.close()
    message = str(caught.value)
    assert f"host {sshd.user}@127.0.0.1:{relay.port} was not ready after 4 s" in message
    assert f"refused the key for user {sshd.user!r}" in message


def test_nothing_listening_is_reported_as_no_ssh_connection(keys: dict[str, KeyPair]) -> None:
    from tests.targets.sshd import free_port

    closed = SshEndpoint("127.0.0.1", "root", keys["host"].private_pem, free_port())
    with pytest.raises(OperationError, match="did not accept an SSH connection"):
        wait_until_ready(SshAccess(closed), timeout=1, poll_interval=0.2)


def test_private_keys_are_read_and_never_shown(keys: dict[str, KeyPair]) -> None:
    assert load_private_key(keys["host"].private_pem).get_name() == "ssh-rsa"
    endpoint_ = SshEndpoint("127.0.0.1", "root", keys["host"].private_pem)
    assert keys["host"].private_pem not in repr(endpoint_)
    with pytest.raises(OperationError, match="cannot be read"):
        load_private_key("not a key")
