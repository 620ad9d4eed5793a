"""``mapt serve --sandbox`` against a moto_server, for the service's end-to-end modules.

One moto_server (strict about instance types and images, loaded with the images mapt
looks up, as docs/sandbox.md starts it) and, usually, one real ``mapt serve --sandbox``
on it, shared by a test module: a sandbox deployment is the expensive part of each
test. Also ``metric_samples``, ``/metrics`` read with prometheus-client's own parser.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import FAKE_CREDENTIALS
from tests.harness.moto_server import moto_server
from tests.harness.refusing_moto import REFUSED_ZONES_VARIABLE
from tests.harness.sandbox_moto import ENABLED_REGIONS_VARIABLE
from tests.harness.service import ServerProcess, make_token, running
from tests.harness.service_hosts import ENABLED_REGIONS

REPOSITORY = Path(__file__).resolve().parents[2]
# Outside every test's AWS configuration: only the fake credentials count.
_NOWHERE = str(Path(tempfile.gettempdir()) / "mapt-test-no-aws-config")
# What the endpoint and the server both run with: fake credentials, no AWS config file.
# The event intake's long poll of a sandbox service (1 s to 20 s; 20 by default): a
# stopping server waits for its intake's poll, which held each module's teardown.
EVENT_POLL_WAIT = 1
SANDBOX_AWS = {
    **FAKE_CREDENTIALS,
    "AWS_CONFIG_FILE": _NOWHERE,
    "AWS_SHARED_CREDENTIALS_FILE": _NOWHERE,
    "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
    "MOTO_ENABLE_AMI_VALIDATION": "true",
    "MOTO_AMIS_PATH": str(REPOSITORY / "docs" / "sandbox-amis.json"),
}


@contextmanager
def sandbox_endpoint(
    refused_zones: Path | None = None, enabled_regions: frozenset[str] | None = None
) -> Iterator[str]:
    """A moto_server as the sandbox's AWS; yields its URL.

    With ``refused_zones``, a moto whose Auto Scaling groups refuse launches in the
    zones that file lists (``tests/harness/refusing_moto.py``; the test writes the file);
    with ``enabled_regions``, one where only those regions are opted in. Either runs
    ``tests/harness/sandbox_moto.py``; neither, moto_server as docs/sandbox.md starts it.
    """
    env = {**os.environ, **SANDBOX_AWS}
    program = None
    if refused_zones is not None or enabled_regions is not None:
        env["PYTHONPATH"] = str(REPOSITORY)
        program = [sys.executable, str(Path(__file__).with_name("sandbox_moto.py"))]
    if refused_zones is not None:
        env[REFUSED_ZONES_VARIABLE] = str(refused_zones)
    if enabled_regions is not None:
        env[ENABLED_REGIONS_VARIABLE] = ",".join(sorted(enabled_regions))
    with moto_server(env, program=program) as endpoint:
        yield endpoint


@dataclass(frozen=True)
class SandboxService:
    """The endpoint and the server a module's tests drive; modules add their own steps."""

    endpoint: str
    server: ServerProcess
    token: str
    # The file:// backend the tests' hosts keep their state in.
    state: Path
    # The endpoint's refused zones (``sandbox_endpoint``), if it refuses any.
    refused_zones: Path | None = None

    @contextmanager
    def refusing_launches(self, *zones: str) -> Iterator[None]:
        """The endpoint's Auto Scaling groups refuse launches in ``zones`` until the block
        ends, as AWS does when they have no capacity (a failed launch activity)."""
        if self.refused_zones is None:
            raise RuntimeError("this endpoint refuses nothing: start it with refused_zones")
        self.refused_zones.write_text("".join(f"{zone}\n" for zone in zones))
        try:
            yield
        finally:
            self.refused_zones.write_text("")

    def client(self) -> httpx.Client:
        """An HTTP client of the server, holding the write token."""
        return self.server.client(self.token)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The server's ``/metrics`` now, by (name, labels)."""
        with self.client() as client:
            return metric_samples(client)

    def aws(self, service: str, region: str) -> Any:
        """A boto3 client of the endpoint: acting on AWS behind the service's back."""
        return endpoint_client(self.endpoint, service, region)


@functools.cache
def endpoint_client(endpoint: str, service: str, region: str) -> Any:
    """A boto3 client of the endpoint, made once per service and region (each costs 50 ms
    of CPU; tests poll the endpoint with them)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@contextmanager
def sandbox_service(
    folder: Path, *flags: str, refused_zones: Path | None = None
) -> Iterator[SandboxService]:
    """A moto_server (``sandbox_endpoint``, the service harness's ``ENABLED_REGIONS``
    opted in: the sandbox's images are in every region) and ``mapt serve --sandbox
    --port 0 --event-poll-wait 1s FLAGS`` on it (SQLite in ``folder``), with a write
    token; stopped when the block ends."""
    with sandbox_endpoint(refused_zones, ENABLED_REGIONS) as endpoint:
        database_url = f"sqlite:///{folder / 'service.sqlite3'}"
        serve = [sys.executable, "-m", "mapt", "serve", "--sandbox", "--port", "0"]
        server = ServerProcess(
            database_url,
            folder / "server.log",
            command=[*serve, "--event-poll-wait", f"{EVENT_POLL_WAIT}s", *flags],
            env={
                **SANDBOX_AWS,
                "AWS_ENDPOINT_URL": endpoint,
                "MAPT_DATABASE_URL": database_url,
                "MAPT_STATE_DIR": str(folder / "default-state"),
            },
        )
        with running(server):
            token = make_token(database_url, "ci")
            yield SandboxService(endpoint, server, token, folder / "state", refused_zones)


def metric_samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET /metrics`` parsed by prometheus-client: (sample, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
