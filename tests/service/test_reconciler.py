"""Health and recovery: ``mapt serve --sandbox`` against a moto_server, driven over HTTP.

One server (the real ``mapt serve --sandbox`` command) and one moto_server are shared
by the module; each test works on a host of its own. The reconciler runs every second
with a short backoff, so a failure is seen, and retried, in seconds. A machine is
killed behind the service's back with a boto3 call to moto, as a spot reclaim or an
operator would.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.conftest import FAKE_CREDENTIALS
from tests.harness.moto_server import moto_server
from tests.harness.service import ServerProcess, make_token, running, wait_for

REPOSITORY = Path(__file__).resolve().parents[2]
FAMILIES = "m5,m6a,m6i,m7a,m7i,t3,t3a"
REGION = "us-east-1"
ATTEMPTS = 2
BACKOFF = 2.0
# A sandbox create, or recovery, on a loaded 2-core machine: generous, never waited out.
DEPLOY_TIMEOUT = 300.0


class Sandbox:
    def __init__(self, endpoint: str, server: ServerProcess, token: str, state: Path) -> None:
        self.endpoint = endpoint
        self.server = server
        self.token = token
        self.state = state

    def ec2(self) -> Any:
        return boto3.client(
            "ec2",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def client(self) -> httpx.Client:
        return self.server.client(self.token)

    def create(self, name: str) -> dict[str, Any]:
        fields = {
            "name": name, "os": "fedora", "cpus": 2, "memory": 8,
            "compute_families": FAMILIES, "backed_url": f"file://{self.state}",
        }  # fmt: skip
        with self.client() as client:
            answer = client.post(
                "/v1/hosts", json=fields, params={"wait": "true", "timeout": DEPLOY_TIMEOUT}
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["execution"]["status"] == "succeeded", answer.text
        return self.host(name)

    def host(self, name: str) -> dict[str, Any]:
        with self.client() as client:
            answer = client.get(f"/v1/hosts/{name}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["host"] if "host" in answer.json() else answer.json())

    def recoveries(self, name: str) -> list[dict[str, Any]]:
        with self.client() as client:
            answer = client.get(
                "/v1/executions", params={"include_completed": "true", "target": name}
            )
        assert answer.status_code == 200, answer.text
        return [e for e in answer.json()["executions"] if e["name"] == "hosts.recover"]

    def instances(self, name: str) -> dict[str, str]:
        """The project's instances on the endpoint: id -> state."""
        reservations = self.ec2().describe_instances(
            Filters=[{"Name": "tag:mapt:project", "Values": [name]}]
        )["Reservations"]
        return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}

    def running_instance(self, name: str) -> str:
        [instance] = [i for i, state in self.instances(name).items() if state == "running"]
        return instance


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    folder = tmp_path_factory.mktemp("reconciler")
    nowhere = str(Path(tempfile.gettempdir()) / "mapt-test-no-aws-config")
    aws = {
        **FAKE_CREDENTIALS,
        "AWS_CONFIG_FILE": nowhere,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
        "MOTO_ENABLE_AMI_VALIDATION": "true",
        "MOTO_AMIS_PATH": str(REPOSITORY / "docs" / "sandbox-amis.json"),
    }
    with moto_server({**os.environ, **aws}) as endpoint:
        database_url = f"sqlite:///{folder / 'service.sqlite3'}"
        server = ServerProcess(
            database_url,
            folder / "server.log",
            command=[
                sys.executable,
                "-m",
                "mapt",
                "serve",
                "--sandbox",
                "--port",
                "0",
                "--reconcile-interval",
                "1s",
                "--recovery-attempts",
                str(ATTEMPTS),
                "--recovery-backoff",
                f"{BACKOFF:g}s",
            ],
            env={
                **aws,
                "AWS_ENDPOINT_URL": endpoint,
                "MAPT_DATABASE_URL": database_url,
                "MAPT_STATE_DIR": str(folder / "default-state"),
            },
        )
        with running(server):
            yield Sandbox(endpoint, server, make_token(database_url, "ci"), folder / "state")


def test_mapt_serve_sandbox_says_so_in_one_line_at_start(sandbox: Sandbox) -> None:
    lines = [line for line in sandbox.server.text().splitlines() if line.startswith("Sandbox:")]
    assert lines == [f"Sandbox: every AWS call goes to {sandbox.endpoint}, never to AWS."]


def test_a_host_whose_instance_is_terminated_goes_error_then_running_on_a_new_instance(
    sandbox: Sandbox,
) -> None:
    assert sandbox.create("healthy")["state"] == "RUNNING"
    first = sandbox.running_instance("healthy")

    sandbox.ec2().terminate_instances(InstanceIds=[first])

    failed = wait_for(
        lambda: (h := sandbox.host("healthy"))["state"] == "ERROR" and h, timeout=60, interval=0.05
    )
    assert failed["last_error"]["type"] == "HostFailure"
    assert f"instance {first} " in failed["last_error"]["message"]
    assert "terminated" in failed["last_error"]["message"]

    recovered = wait_for(
        lambda: (h := sandbox.host("healthy"))["state"] == "RUNNING" and h, timeout=DEPLOY_TIMEOUT
    )
    second = sandbox.running_instance("healthy")
    assert second != first
    assert sandbox.instances("healthy")[first] == "terminated"
    [recovery] = sandbox.recoveries("healthy")
    assert recovery["status"] == "succeeded"
    assert recovery["result"]["recovered"] is True
    assert recovered["execution_id"] == recovery["id"]


def test_a_recovery_that_keeps_failing_is_retried_after_its_backoff_then_given_up(
    sandbox: Sandbox,
) -> None:
    sandbox.create("doomed")
    instance = sandbox.running_instance("doomed")
    ec2 = sandbox.ec2()
    [group] = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0][
        "SecurityGroups"
    ]
    # The machine dies and its place goes with it: every re-deployment is refused.
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance])
    ec2.delete_security_group(GroupId=group["GroupId"])

    def given_up() -> list[dict[str, Any]]:
        done = [r for r in sandbox.recoveries("doomed") if r["status"] == "failed"]
        return done if len(done) == ATTEMPTS else []

    first, second = wait_for(given_up, timeout=DEPLOY_TIMEOUT)
    waited = _when(second["created_at"]) - _when(first["finished_at"])
    assert waited >= timedelta(seconds=BACKOFF)
    host = sandbox.host("doomed")
    assert host["state"] == "ERROR"
    message = host["last_error"]["message"]
    assert message.startswith(f"instance {instance} ")
    assert f"recovery attempt {ATTEMPTS} of {ATTEMPTS} failed" in message
    assert group["GroupId"] in message

    # No attempt beyond the last: let a third come due (backoff doubled) and pass by.
    due = _when(second["finished_at"]) + timedelta(seconds=BACKOFF * 2 + 3)
    wait_for(lambda: datetime.now(due.tzinfo) > due, timeout=60)
    assert len(sandbox.recoveries("doomed")) == ATTEMPTS
    assert sandbox.host("doomed")["state"] == "ERROR"


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
