"""A ``moto_server`` process on a free loopback port: the AWS endpoint of a test or benchmark.

One piece for every suite that needs moto in its own process (the sandbox's endpoint,
the real engine's S3 store, the CLI's failure tests, ``benchmarks/host_list.py``): a
separate process keeps moto's CPU and threads out of the process under test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def loopback_certificate(folder: Path) -> tuple[Path, Path, bytes]:
    """A test CA's certificate for 127.0.0.1 (trustme), for a server over TLS: its
    chain and key files, written in ``folder``, and the CA's PEM, which clients trust."""
    import trustme

    authority = trustme.CA()
    served = authority.issue_cert("127.0.0.1")
    chain, key = folder / "chain.pem", folder / "key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in served.cert_chain_pems))
    served.private_key_pem.write_to_path(str(key))
    return chain, key, authority.cert_pem.bytes()


def certifi_and_loopback(folder: Path) -> tuple[tuple[Path, Path], Path]:
    """``loopback_certificate``'s chain and key, and a bundle (``ca.pem`` in ``folder``)
    of certifi's roots, which botocore verifies AWS with, and the test CA: each load of
    it costs what loading certifi's does, for a benchmark that counts them."""
    import certifi

    chain, key, authority = loopback_certificate(folder)
    bundle = folder / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + authority)
    return (chain, key), bundle


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server(
    env: Mapping[str, str] | None = None,
    *,
    log: IO[str] | None = None,
    timeout: float = 60,
    program: Sequence[str] | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[str]:
    """Run ``moto_server`` (with ``env`` as its whole environment, if given) until the block
    ends; yields its endpoint URL, ``http://127.0.0.1:<port>``, once it accepts connections.

    ``tls``: its certificate chain and key files, to serve ``https://127.0.0.1:<port>``.

    ``program``: the command to run instead, taking moto_server's ``-H``/``-p`` (a moto
    patched first: ``tests/harness/sandbox_moto.py``). Its output goes to ``log``
    (discarded without one). A server that exits or does not listen within ``timeout``
    seconds raises ``RuntimeError``.
    """
    port = free_port()
    output = log if log is not None else subprocess.DEVNULL
    command = list(program or [str(Path(sys.executable).with_name("moto_server"))])
    certificate = ["-c", str(tls[0]), "-k", str(tls[1])] if tls else []
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port), *certificate],
        stdout=output,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
    )
    endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {endpoint}") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # its threads may take longer on a loaded machine
            process.kill()
            process.wait()
