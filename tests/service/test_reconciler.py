"""Health and recovery: ``mapt serve --sandbox`` against a moto_server, driven over HTTP.

One server (the real ``mapt serve --sandbox`` command) and one moto_server are shared
by the module; each test works on a host of its own. The reconciler runs every second
with a short backoff, so a failure is seen, and retried, in seconds. A machine is
killed behind the service's back with a boto3 call to moto, as a spot reclaim or an
operator would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness.sandbox_service import SandboxService, sandbox_service
from tests.harness.service import wait_for

REPOSITORY = Path(__file__).resolve().parents[2]
FAMILIES = "m5,m6a,m6i,m7a,m7i,t3,t3a"
REGION = "us-east-1"
ATTEMPTS = 2
BACKOFF = 2.0
# A sandbox create, or recovery, on a loaded 2-core machine: generous, never waited out.
DEPLOY_TIMEOUT = 300.0


class Sandbox(SandboxService):
    def ec2(self) -> Any:
        return self.aws("ec2", REGION)

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

    def history(self, name: str) -> list[tuple[str, str | None]]:
        """How each interval of the host's cost history started and ended, in order."""
        import sqlalchemy as sa

        from mapt.service._schema import host_intervals

        engine = sa.create_engine(self.server.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.select(host_intervals.c.start_reason, host_intervals.c.end_reason)
                    .where(host_intervals.c.host == name)
                    .order_by(host_intervals.c.started_at)
                ).all()
        finally:
            engine.dispose()
        return [(row.start_reason, row.end_reason) for row in rows]

    def running_instance(self, name: str) -> str:
        [instance] = [i for i, state in self.instances(name).items() if state == "running"]
        return instance


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    folder = tmp_path_factory.mktemp("reconciler")
    with sandbox_service(
        folder,
        "--reconcile-interval",
        "1s",
        "--recovery-attempts",
        str(ATTEMPTS),
        "--recovery-backoff",
        f"{BACKOFF:g}s",
    ) as service:
        yield Sandbox(service.endpoint, service.server, service.token, service.state)


def test_mapt_serve_sandbox_says_so_in_one_line_at_start(sandbox: Sandbox) -> None:
    lines = [line for line in sandbox.server.text().splitlines() if line.startswith("Sandbox:")]
    assert lines == [f"Sandbox: every AWS call goes to {sandbox.endpoint}, never to AWS."]


def test_a_terminated_host_recovers_and_one_whose_place_is_gone_too_is_retried_then_given_up(
    sandbox: Sandbox,
) -> None:
    """One host for both paths: a sandbox deployment is the expensive part of each."""
    assert sandbox.create("pr-1")["state"] == "RUNNING"
    first = sandbox.running_instance("pr-1")
    ec2 = sandbox.ec2()

    # The machine dies: the reconciler sees it, and the recovery makes a new one.
    ec2.terminate_instances(InstanceIds=[first])
    failed = wait_for(
        lambda: (h := sandbox.host("pr-1"))["state"] == "ERROR" and h, timeout=60, interval=0.05
    )
    assert failed["last_error"]["type"] == "HostFailure"
    assert failed["last_error"]["message"].startswith(f"instance {first} ")
    assert "terminated" in failed["last_error"]["message"]
    recovered = wait_for(
        lambda: (h := sandbox.host("pr-1"))["state"] == "RUNNING" and h, timeout=DEPLOY_TIMEOUT
    )
    second = sandbox.running_instance("pr-1")
    assert second != first
    assert sandbox.instances("pr-1")[first] == "terminated"
    [recovery] = sandbox.recoveries("pr-1")
    assert (recovery["status"], recovery["result"]["recovered"]) == ("succeeded", True)
    assert recovered["execution_id"] == recovery["id"]
    # What it cost: the dead machine's time ends at the failure, the new one's starts.
    assert sandbox.history("pr-1") == [("created", "failed"), ("recovered", None)]

    # It dies again, and its place goes with it: every re-deployment is refused.
    [group] = ec2.describe_instances(InstanceIds=[second])["Reservations"][0]["Instances"][0][
        "SecurityGroups"
    ]
    ec2.terminate_instances(InstanceIds=[second])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[second])
    ec2.delete_security_group(GroupId=group["GroupId"])

    def given_up() -> list[dict[str, Any]]:
        done = [r for r in sandbox.recoveries("pr-1")[1:] if r["status"] == "failed"]
        return done if len(done) == ATTEMPTS else []

    attempt_1, attempt_2 = wait_for(given_up, timeout=DEPLOY_TIMEOUT)
    assert _when(attempt_2["created_at"]) - _when(attempt_1["finished_at"]) >= timedelta(
        seconds=BACKOFF
    )
    host = sandbox.host("pr-1")
    assert host["state"] == "ERROR"
    message = host["last_error"]["message"]
    assert message.startswith(f"instance {second} ")
    assert f"recovery attempt {ATTEMPTS} of {ATTEMPTS} failed" in message
    assert group["GroupId"] in message

    # No attempt beyond the last: let a third come due (the backoff doubled) and pass.
    due = _when(attempt_2["finished_at"]) + timedelta(seconds=BACKOFF * 2 + 3)
    wait_for(lambda: datetime.now(due.tzinfo) > due, timeout=60)
    assert len(sandbox.recoveries("pr-1")) == 1 + ATTEMPTS
    assert sandbox.host("pr-1")["state"] == "ERROR"


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
