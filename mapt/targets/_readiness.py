"""Readiness: wait until a new machine accepts mapt's SSH key and has finished booting;
then run the commands that hand it its secrets over that same kind of SSH session.

``up`` returns when AWS says the instance runs, which is minutes before a CI job can use
it: the SSH server starts, cloud-init installs packages, Windows installs OpenSSH. This
module waits for that in plain Python (paramiko) rather than in a Pulumi plugin, so it
runs and is tested without the Pulumi engine, against a real sshd.

A machine is ready when an SSH session with the key opens (through the bastion for
air-gapped hosts) and, on Linux, ``cloud-init status --wait`` exits 0 (or 2: finished
with recoverable errors, such as a deprecated key). A failure that waiting cannot fix
(cloud-init reporting an error, cloud-init missing) fails at once; anything else is
retried until the timeout, and the error then names the machine and the last failure.

``remote_session`` opens one session on a ready machine to run ``RemoteCommand``s
whose secret goes on the command's standard input, or is typed at a prompt on a
terminal for tools that read passwords from a terminal only: never in the command
line (which ``ps`` shows every user) and never in a file.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mapt.core import OperationError, get_logger, redact, register_secret

if TYPE_CHECKING:
    import paramiko

log = get_logger(__name__)

DEFAULT_READY_TIMEOUT = 40 * 60.0
DEFAULT_POLL_INTERVAL = 5.0
# One attempt's TCP connect, banner and authentication may take this long at most.
DEFAULT_CONNECT_TIMEOUT = 20.0
CLOUD_INIT_COMMAND = "cloud-init status --wait"
# `cloud-init status` exit codes: 0 done, 1 critical error, 2 done with recoverable errors.
_CLOUD_INIT_DONE = (0, 2)
_COMMAND_NOT_FOUND = 127
# How long one remote command may take (registering a Windows runner may first wait up
# to 15 minutes for the first-boot script to have installed it).
DEFAULT_COMMAND_TIMEOUT = 20 * 60.0
_KEEPALIVE_SECONDS = 30
# A timeout this close to the deadline is the deadline's (timers do not fire exactly).
_DEADLINE_SLACK = 0.1


@dataclass(frozen=True)
class SshEndpoint:
    """One SSH server: address, user and the private key (PEM/OpenSSH text) to log in with."""

    host: str
    username: str
    private_key: str = field(repr=False)
    port: int = 22

    def __post_init__(self) -> None:
        register_secret(self.private_key)

    def __str__(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


@dataclass(frozen=True)
class SshAccess:
    """How to reach a machine: the machine itself, the bastion in front of it if any, and
    whether readiness includes cloud-init (Linux hosts)."""

    target: SshEndpoint
    bastion: SshEndpoint | None = None
    wait_for_cloud_init: bool = True

    def describe(self) -> str:
        if self.bastion is None:
            return f"host {self.target}"
        return f"host {self.target} (through bastion {self.bastion})"


class _NotReady(Exception):
    """One attempt failed in a way that waiting may fix.

    ``cut_short``: it ran out of time only because the whole wait's deadline came first
    (it was given less than ``connect_timeout``), which says nothing about the machine.
    """

    def __init__(self, message: str, *, cut_short: bool = False) -> None:
        super().__init__(message)
        self.cut_short = cut_short


class _Failed(Exception):
    """One attempt failed in a way that waiting will not fix."""


def load_private_key(text: str) -> paramiko.PKey:
    """Parse a private key in PEM or OpenSSH format (RSA, Ed25519 or ECDSA)."""
    import paramiko

    errors = []
    for key_class in (paramiko.RSAKey, paramiko.Ed25519Key, paramiko.ECDSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError) as err:
            errors.append(f"{key_class.__name__}: {err}")
    raise OperationError("the SSH private key cannot be read: " + redact("; ".join(errors)))


def wait_until_ready(
    access: SshAccess,
    *,
    timeout: float = DEFAULT_READY_TIMEOUT,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> None:
    """Return once the machine is ready; raise ``OperationError`` naming it otherwise.

    The error says which machine (host or bastion) and what failed last: the address
    not answering, the key refused, or cloud-init's status.
    """
    target_key = load_private_key(access.target.private_key)
    bastion_key = load_private_key(access.bastion.private_key) if access.bastion else None
    deadline = time.monotonic() + timeout
    attempt = 0
    last = "no attempt was made"
    log.info("waiting up to %.0f s for %s to be ready", timeout, access.describe())
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OperationError(
                f"{access.describe()} was not ready after {timeout:g} s: {last}",
                hint="Check the instance's console output in the EC2 console.",
            )
        attempt += 1
        try:
            _attempt(access, target_key, bastion_key, deadline, connect_timeout)
        except _NotReady as err:
            log.debug("attempt %d: %s", attempt, err)
            # The error names the last real failure ("refused the key"), not the
            # timeout of a final attempt that the deadline stopped half-way.
            if not (err.cut_short and attempt > 1):
                last = str(err)
        except _Failed as err:
            raise OperationError(f"{access.describe()} failed to become ready: {err}") from None
        else:
            log.info("%s is ready", access.describe())
            return
        time.sleep(max(0.0, min(poll_interval, deadline - time.monotonic())))


def _attempt(
    access: SshAccess,
    target_key: paramiko.PKey,
    bastion_key: paramiko.PKey | None,
    deadline: float,
    connect_timeout: float,
) -> None:
    with _session(access, target_key, bastion_key, deadline, connect_timeout) as client:
        if access.wait_for_cloud_init:
            _wait_for_cloud_init(client, access.target, deadline)


@contextmanager
def _session(
    access: SshAccess,
    target_key: paramiko.PKey,
    bastion_key: paramiko.PKey | None,
    deadline: float,
    connect_timeout: float,
) -> Iterator[paramiko.SSHClient]:
    opened: list[paramiko.SSHClient] = []
    try:
        sock = None
        if access.bastion is not None and bastion_key is not None:
            jump = _connect(access.bastion, bastion_key, "bastion", deadline, connect_timeout)
            opened.append(jump)
            sock = _forward(jump, access.target, deadline, connect_timeout)
        client = _connect(access.target, target_key, "host", deadline, connect_timeout, sock)
        opened.append(client)
        yield client
    finally:
        for client in reversed(opened):
            with suppress(Exception):
                client.close()


def _connect(
    endpoint: SshEndpoint,
    key: paramiko.PKey,
    role: str,
    deadline: float,
    connect_timeout: float,
    sock: paramiko.Channel | None = None,
) -> paramiko.SSHClient:
    import paramiko

    limit = max(0.1, min(connect_timeout, deadline - time.monotonic()))
    client = paramiko.SSHClient()
    # The machine was created moments ago, so no known_hosts entry can exist for it:
    # accept its new host key (the base policy accepts without saving it anywhere).
    client.set_missing_host_key_policy(paramiko.MissingHostKeyPolicy())
    try:
        client.connect(
            endpoint.host,
            port=endpoint.port,
            username=endpoint.username,
            pkey=key,
            sock=sock,
            timeout=limit,
            banner_timeout=limit,
            auth_timeout=limit,
            channel_timeout=limit,
            look_for_keys=False,
            allow_agent=False,
        )
    except paramiko.AuthenticationException:
        client.close()
        raise _NotReady(
            f"{role} {endpoint} refused the key for user {endpoint.username!r}"
        ) from None
    except (paramiko.SSHException, OSError, EOFError) as err:
        client.close()
        raise _NotReady(
            f"{role} {endpoint} did not accept an SSH connection: {_reason(err)}",
            cut_short=_cut_short(limit, connect_timeout, deadline),
        ) from None
    return client


def _cut_short(limit: float, connect_timeout: float, deadline: float) -> bool:
    """Did a step given ``limit`` seconds end at the deadline that shortened it?"""
    return limit < connect_timeout and time.monotonic() >= deadline - _DEADLINE_SLACK


def _forward(
    jump: paramiko.SSHClient, target: SshEndpoint, deadline: float, connect_timeout: float
) -> paramiko.Channel:
    import paramiko

    transport = jump.get_transport()
    if transport is None:
        raise _NotReady("the bastion closed the connection")
    limit = max(0.1, min(connect_timeout, deadline - time.monotonic()))
    try:
        return transport.open_channel(
            "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0), timeout=limit
        )
    except (paramiko.SSHException, OSError, EOFError) as err:
        raise _NotReady(
            f"the bastion could not open a connection to host {target}: {_reason(err)}",
            cut_short=_cut_short(limit, connect_timeout, deadline),
        ) from None


def _wait_for_cloud_init(client: paramiko.SSHClient, target: SshEndpoint, deadline: float) -> None:
    import paramiko

    try:
        transport = client.get_transport()
        if transport is None:
            raise _NotReady(f"host {target} closed the connection")
        channel = transport.open_session(timeout=max(0.1, deadline - time.monotonic()))
        channel.exec_command(CLOUD_INIT_COMMAND)
        output = bytearray()
        while not channel.exit_status_ready():
            if time.monotonic() >= deadline:
                raise _NotReady(f"`{CLOUD_INIT_COMMAND}` on host {target} had not finished")
            output += _drain(channel)
            if channel.closed and not channel.exit_status_ready():
                break
            time.sleep(0.05)
        output += _drain(channel)
        status = channel.recv_exit_status() if channel.exit_status_ready() else -1
    except (paramiko.SSHException, OSError, EOFError) as err:
        raise _NotReady(
            f"`{CLOUD_INIT_COMMAND}` on host {target} broke off: {_reason(err)}"
        ) from None
    text = redact(output.decode("utf-8", "replace").strip())
    summary = " ".join(text.split())[-300:] or "no output"
    if status in _CLOUD_INIT_DONE:
        if status != 0:
            log.warning("cloud-init on %s finished with recoverable errors: %s", target, summary)
        return
    if status == -1:
        raise _NotReady(f"`{CLOUD_INIT_COMMAND}` on host {target} ended without an exit status")
    if status == _COMMAND_NOT_FOUND:
        raise _Failed(f"host {target} has no cloud-init (`{CLOUD_INIT_COMMAND}` not found)")
    raise _Failed(f"`{CLOUD_INIT_COMMAND}` on host {target} exited {status}: {summary}")


def _drain(channel: paramiko.Channel) -> bytes:
    data = b""
    while channel.recv_ready():
        data += channel.recv(65536)
    while channel.recv_stderr_ready():
        data += channel.recv_stderr(65536)
    return data


def _reason(err: BaseException) -> str:
    if isinstance(err, socket.timeout):
        return "timed out"
    text = str(err) or type(err).__name__
    return redact(text)


@dataclass(frozen=True)
class RemoteCommand:
    """A command to run on a ready machine, and the secret it needs, if any.

    ``secret`` is written to the command's standard input, followed by a newline and
    the end of input. With ``prompt``, the command runs on a terminal instead and the
    secret is typed once ``prompt`` appears in its output: for tools that refuse to
    read a password from anything but a terminal (``subscription-manager``). A
    command that ends without printing the prompt (nothing to do) is not an error.
    """

    purpose: str
    command: str
    secret: str | None = field(default=None, repr=False)
    prompt: str | None = None

    def __post_init__(self) -> None:
        if self.secret is not None:
            if "\n" in self.secret or "\r" in self.secret:
                raise OperationError(f"the secret for {self.purpose} holds a line break")
            register_secret(self.secret)


# Runs one command on the machine and returns its standard output (redacted).
RemoteRunner = Callable[[RemoteCommand], str]


@contextmanager
def remote_session(
    access: SshAccess,
    *,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> Iterator[RemoteRunner]:
    """One SSH session on a ready machine; yields a function that runs commands in it.

    A command that exits non-zero, or runs longer than ``command_timeout`` seconds,
    raises ``OperationError`` naming its purpose, the machine and the end of its
    output (redacted); so does a machine that does not accept the connection.
    """
    target_key = load_private_key(access.target.private_key)
    bastion_key = load_private_key(access.bastion.private_key) if access.bastion else None
    deadline = time.monotonic() + connect_timeout
    try:
        with _session(access, target_key, bastion_key, deadline, connect_timeout) as client:
            transport = client.get_transport()
            if transport is not None:
                # A spot host sits behind a network load balancer, which drops TCP flows
                # idle for 350 s; a step may wait quietly longer than that.
                transport.set_keepalive(_KEEPALIVE_SECONDS)

            def run(command: RemoteCommand) -> str:
                return _run_remote(client, access.target, command, command_timeout)

            yield run
    except (_NotReady, _Failed) as err:
        raise OperationError(f"{access.describe()}: {err}") from None


def _run_remote(
    client: paramiko.SSHClient, target: SshEndpoint, command: RemoteCommand, timeout: float
) -> str:
    import paramiko

    deadline = time.monotonic() + timeout
    what = f"{command.purpose} on host {target}"
    output = bytearray()
    try:
        transport = client.get_transport()
        if transport is None:
            raise OperationError(f"{what}: the connection was closed")
        channel = transport.open_session(timeout=DEFAULT_CONNECT_TIMEOUT)
        if command.prompt is not None:
            channel.get_pty(term="dumb", width=200)
        channel.exec_command(command.command)
        typed = command.prompt is None
        if command.secret is not None and command.prompt is None:
            channel.sendall(command.secret.encode() + b"\n")
        if command.prompt is None:
            channel.shutdown_write()
        while not (channel.exit_status_ready() and not channel.recv_ready()):
            if time.monotonic() >= deadline:
                raise OperationError(f"{what} had not finished after {timeout:g} s")
            output += _drain(channel)
            if not typed and command.prompt is not None and command.prompt.encode() in output:
                channel.sendall((command.secret or "").encode() + b"\n")
                typed = True
            if channel.closed and not channel.exit_status_ready():
                break
            time.sleep(0.02)
        output += _drain(channel)
        status = channel.recv_exit_status() if channel.exit_status_ready() else -1
        channel.close()
    except (paramiko.SSHException, OSError, EOFError) as err:
        raise OperationError(f"{what} broke off: {_reason(err)}") from None
    text = redact(output.decode("utf-8", "replace"))
    if status != 0:
        summary = " ".join(text.split())[-300:] or "no output"
        raise OperationError(f"{what} failed (exit {status}): {summary}")
    return text
