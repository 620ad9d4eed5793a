"""A real OpenSSH server on 127.0.0.1 for readiness tests.

The server runs in the foreground (``sshd -D -e``) on a free port, bound to 127.0.0.1
only, with a temporary host key, an ``AuthorizedKeysFile`` the test writes, and a
``PATH`` whose first entry holds a fake ``cloud-init`` script: it records its arguments
and exits with the status the test sets, so a test proves the command is run and its
status respected. Port forwarding is allowed to this server's own port only, so it can
also play the bastion.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_openssh: str


def new_rsa_key() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "BEGIN RSA PRIVATE KEY", as id_rsa
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return KeyPair(private, public)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SshServer:
    """One sshd process and the files that steer it."""

    def __init__(self, root: Path, authorized: list[str]) -> None:
        self.root = root
        self.port = free_port()
        self.user = getpass.getuser()
        self.calls = root / "cloud-init-calls"
        self.exit_code = root / "cloud-init-exit"
        self.status_text = root / "cloud-init-output"
        self.authorized_keys = root / "authorized_keys"
        self.authorized_keys.write_text("".join(k.strip() + "\n" for k in authorized))
        host_key = root / "host_key"
        host_key.write_bytes(
            ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        host_key.chmod(0o600)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        self.bin_dir = bin_dir  # first on the sessions' PATH: tests add stand-ins here
        script = bin_dir / "cloud-init"
        script.write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> "{self.calls}"\n'
            f'cat "{self.status_text}" 2>/dev/null\n'
            f'exit "$(cat "{self.exit_code}" 2>/dev/null || echo 0)"\n'
        )
        script.chmod(0o755)
        self.set_cloud_init(0, "status: done")
        config = root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    "PidFile none",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "AllowTcpForwarding yes",
                    f"PermitOpen 127.0.0.1:{self.port}",
                    f"SetEnv PATH={bin_dir}:/usr/bin:/bin",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            # sshd's privilege separation directory, which systemd would create.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.log = root / "sshd.log"
        self._log_handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        self._wait_listening()

    def set_cloud_init(self, exit_code: int, output: str) -> None:
        self.exit_code.write_text(f"{exit_code}\n")
        self.status_text.write_text(output + "\n")

    def cloud_init_calls(self) -> list[str]:
        if not self.calls.exists():
            return []
        return self.calls.read_text().splitlines()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited {self.process.returncode}: {self.log.read_text()}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_handle.close()
