"""Event intake: ``mapt serve --sandbox`` against a moto_server, events put on its queue.

One server (the real ``mapt serve --sandbox --event-regions us-east-1
--events-backend file://...``) and one moto_server are shared by the module. The
server sets up the region's intake stack in that backend when it starts; the tests
put EventBridge envelopes on the queue (as EventBridge delivers them, or through
EventBridge itself with ``put_events``) and read what the server did: its records,
the queues, its metrics. ``mapt serve setup|teardown`` run in-process against the
same endpoint, in regions of their own (the server's region only where a test
restores it).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.sandbox_service import SANDBOX_AWS, endpoint_client, sandbox_endpoint
from tests.harness.service import ServerProcess, make_token, wait_for

REPOSITORY = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
FAMILIES = "m5,m6a,m6i,m7a,m7i,t3,t3a"
EVENTS_STATE = Path(".pulumi", "stacks", "mapt-events", "events-us-east-1-mapt-events.json")
# A sandbox create on a loaded 2-core machine: generous, never waited out.
DEPLOY_TIMEOUT = 300.0
# The intake's setup at start and one long poll (1 s here) on a loaded machine.
INTAKE_TIMEOUT = 120.0


class Sandbox:
    def __init__(self, endpoint: str, folder: Path, env: dict[str, str]) -> None:
        self.endpoint = endpoint
        self.folder = folder
        self.database_url = f"sqlite:///{folder / 'service.sqlite3'}"
        self.env = {**env, "MAPT_DATABASE_URL": self.database_url}
        self.token = ""
        self.server: ServerProcess | None = None
        self.starts = 0
        # Where the server keeps the event-intake stacks (not its local default state).
        self.events_backend = folder / "events-backend"

    def start(self) -> ServerProcess:
        self.starts += 1
        server = ServerProcess(
            self.database_url,
            self.folder / f"server-{self.starts}.log",
            command=[
                sys.executable,
                "-m",
                "mapt",
                "serve",
                "--sandbox",
                "--port",
                "0",
                "--event-regions",
                REGION,
                "--event-poll-wait",
                "1s",
                "--events-backend",
                f"file://{self.events_backend}",
            ],
            env=self.env,
        )
        self.server = server.start()
        if not self.token:
            self.token = make_token(self.database_url, "ci")
        return server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            if self.server.process is not None:
                self.server.kill_everything()

    def set_up(self) -> ServerProcess:
        """The server, once its intake has set up the region's stack."""
        assert self.server is not None
        server = self.server
        wait_for(
            lambda: any(
                str(e.get("message", "")).startswith(f"event intake of {REGION}: ")
                for e in server.log()
            ),
            timeout=INTAKE_TIMEOUT,
        )
        return server

    def client(self, service: str) -> Any:
        return endpoint_client(self.endpoint, service, REGION)

    def queues(self) -> tuple[str, str]:
        """The intake queue and its dead-letter queue (the one it redrives to)."""
        sqs = self.client("sqs")
        urls = sqs.list_queues().get("QueueUrls", [])
        attributes = {
            url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            for url in urls
        }
        [intake] = [url for url, found in attributes.items() if "RedrivePolicy" in found]
        target = json.loads(attributes[intake]["RedrivePolicy"])["deadLetterTargetArn"]
        [dead] = [url for url, found in attributes.items() if found["QueueArn"] == target]
        return intake, dead

    def pending(self, url: str) -> int:
        """Messages on the queue, visible or being handled."""
        found = self.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(found["ApproximateNumberOfMessages"]) + int(
            found["ApproximateNumberOfMessagesNotVisible"]
        )

    def dead_letters(self, count: int) -> list[tuple[str, str]]:
        """(body, reason) of ``count`` dead letters, waited for."""
        _, dead = self.queues()
        sqs = self.client("sqs")
        seen: list[tuple[str, str]] = []

        def received() -> bool:
            answer = sqs.receive_message(
                QueueUrl=dead, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            for message in answer.get("Messages", []):
                reason = message["MessageAttributes"]["reason"]["StringValue"]
                seen.append((message["Body"], reason))
                sqs.delete_message(QueueUrl=dead, ReceiptHandle=message["ReceiptHandle"])
            return len(seen) >= count

        wait_for(received, timeout=INTAKE_TIMEOUT, interval=0.2)
        return seen

    def api(self) -> Any:
        assert self.server is not None
        return self.server.client(self.token)

    def host(self, name: str) -> dict[str, Any]:
        with self.api() as client:
            answer = client.get(f"/v1/hosts/{name}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return dict(body.get("host", body))

    def create(self, name: str) -> dict[str, Any]:
        fields = {
            "name": name, "os": "fedora", "cpus": 2, "memory": 8,
            "compute_families": FAMILIES, "backed_url": f"file://{self.folder / 'state'}",
        }  # fmt: skip
        with self.api() as client:
            answer = client.post(
                "/v1/hosts", json=fields, params={"wait": "true", "timeout": DEPLOY_TIMEOUT}
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["execution"]["status"] == "succeeded", answer.text
        return self.host(name)

    def executions(self, name: str) -> list[dict[str, Any]]:
        with self.api() as client:
            answer = client.get(
                "/v1/executions", params={"include_completed": "true", "target": name}
            )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["executions"])

    def events(self) -> list[dict[str, Any]]:
        from mapt.service._schema import host_events

        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(sa.select(host_events).order_by(host_events.c.id))
                return [dict(row._mapping) for row in rows]
        finally:
            engine.dispose()

    def counts(self) -> dict[tuple[str, str], float]:
        """``mapt_host_events_received_total`` by (kind, outcome), from /metrics."""
        with self.api() as client:
            answer = client.get("/metrics")
        assert answer.status_code == 200, answer.text
        found: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                if sample.name == "mapt_host_events_received_total":
                    found[(sample.labels["kind"], sample.labels["outcome"])] = sample.value
        return found

    def instance(self, project: str | None) -> str:
        """A running instance on the endpoint, tagged ``mapt:project`` when given."""
        tags = [] if project is None else [{"Key": "mapt:project", "Value": project}]
        image = self.client("ec2").describe_images()["Images"][0]
        reservation = self.client("ec2").run_instances(
            ImageId=image["ImageId"],
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            **({"TagSpecifications": [{"ResourceType": "instance", "Tags": tags}]} if tags else {}),
        )
        return str(reservation["Instances"][0]["InstanceId"])


def envelope(detail_type: str, instance: str, **detail: str) -> dict[str, Any]:
    """An EventBridge event as AWS puts it on the queue."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-12-01T18:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}b:instance/{instance}"],
        "detail": {"instance-id": instance, **detail},
    }


def warning(instance: str) -> dict[str, Any]:
    return envelope(
        "EC2 Spot Instance Interruption Warning", instance, **{"instance-action": "terminate"}
    )


def delta(
    after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    """What each count grew by (those that grew)."""
    grown = {key: value - before.get(key, 0) for key, value in after.items()}
    return {key: value for key, value in grown.items() if value}


def recorded(state: Path) -> dict[str, Any]:
    """Each resource the stack's checkpoint records, by URN: its id, inputs and outputs."""
    resources = json.loads(state.read_text())["checkpoint"]["latest"]["resources"]
    return {
        r["urn"]: (r.get("id"), r.get("inputs"), r.get("outputs"))
        for r in resources
        if not r["type"].startswith("pulumi:providers:")  # the provider's id is per run
    }


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    folder = tmp_path_factory.mktemp("events")
    with sandbox_endpoint() as endpoint:
        env = {
            **SANDBOX_AWS,
            "AWS_ENDPOINT_URL": endpoint,
            "MAPT_STATE_DIR": str(folder / "default-state"),
        }
        sandbox = Sandbox(endpoint, folder, env)
        sandbox.start()
        try:
            yield sandbox
        finally:
            sandbox.stop()


def test_the_intake_stack_is_set_up_at_start_and_a_second_start_changes_nothing(
    sandbox: Sandbox,
) -> None:
    sandbox.set_up()
    intake, dead = sandbox.queues()
    sqs, events = sandbox.client("sqs"), sandbox.client("events")
    attributes = sqs.get_queue_attributes(QueueUrl=intake, AttributeNames=["All"])["Attributes"]
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "20"
    [rule] = events.list_rules()["Rules"]
    assert json.loads(rule["EventPattern"])["source"] == ["aws.ec2"]
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == attributes["QueueArn"]
    [statement] = json.loads(attributes["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}
    state = sandbox.events_backend / EVENTS_STATE
    assert not (sandbox.folder / "default-state" / EVENTS_STATE).exists()
    resources = recorded(state)
    checkpoint = state.read_bytes()

    sandbox.stop()
    sandbox.start()
    sandbox.set_up()
    assert sandbox.queues() == (intake, dead)
    assert events.list_rules()["Rules"] == [rule]
    assert recorded(state) == resources
    assert state.read_bytes() == checkpoint  # reused as it is: not even an empty update


def test_a_hosts_events_are_recorded_once_and_anything_else_is_dead_lettered_with_its_reason(
    sandbox: Sandbox,
) -> None:
    """One host for every case: a sandbox deployment is the expensive part."""
    sandbox.set_up()
    assert sandbox.create("ev-1")["state"] == "RUNNING"
    [mine] = [
        i["InstanceId"]
        for r in sandbox.client("ec2").describe_instances(
            Filters=[
                {"Name": "tag:mapt:project", "Values": ["ev-1"]},
                {"Name": "instance-state-name", "Values": ["running"]},
            ]
        )["Reservations"]
        for i in r["Instances"]
    ]
    intake, _ = sandbox.queues()
    sqs = sandbox.client("sqs")
    before = sandbox.counts()
    executions_before = sandbox.executions("ev-1")

    # Not an event, and events of instances that are no host of this service.
    stranger = sandbox.instance("someone-else")
    untagged = sandbox.instance(None)
    unusable = [
        "this is not JSON {",
        json.dumps(warning(stranger)),
        json.dumps(warning(untagged)),
        json.dumps({**warning(mine), "detail-type": "EC2 AMI State Change"}),
    ]
    for body in unusable:
        sqs.send_message(QueueUrl=intake, MessageBody=body)
    reasons = dict(sandbox.dead_letters(len(unusable)))
    assert set(reasons) == set(unusable)
    assert reasons[unusable[0]].startswith("not JSON")
    assert reasons[unusable[1]] == (
        f"instance {stranger} is of project 'someone-else', which is no host of this service"
    )
    assert reasons[unusable[2]] == f"instance {untagged} has no mapt:project tag: not mapt's"
    assert reasons[unusable[3]] == "detail-type 'EC2 AMI State Change' is not one mapt acts on"
    wait_for(lambda: sandbox.pending(intake) == 0, timeout=INTAKE_TIMEOUT)
    assert sandbox.events() == []
    assert sandbox.host("ev-1")["state"] == "RUNNING"
    assert sandbox.executions("ev-1") == executions_before

    # A state change, through EventBridge's own rule and target: recorded.
    sandbox.client("events").put_events(
        Entries=[
            {
                "Source": "aws.ec2",
                "DetailType": "EC2 Instance State-change Notification",
                "Detail": json.dumps({"instance-id": mine, "state": "running"}),
            }
        ]
    )
    [changed] = wait_for(sandbox.events, timeout=INTAKE_TIMEOUT)
    assert (changed["kind"], changed["host"], changed["instance_id"]) == (
        "state-change",
        "ev-1",
        mine,
    )
    assert (changed["instance_state"], changed["region"], changed["pool"]) == (
        "running",
        REGION,
        None,
    )
    assert changed["zone"].startswith(REGION)

    # The interruption warning, delivered twice (EventBridge delivers at least once).
    event = warning(mine)
    for _ in range(2):
        sqs.send_message(QueueUrl=intake, MessageBody=json.dumps(event))
    wait_for(lambda: len(sandbox.events()) == 2 and sandbox.pending(intake) == 0,
             timeout=INTAKE_TIMEOUT)  # fmt: skip
    [recorded] = [e for e in sandbox.events() if e["id"] == event["id"]]
    assert (recorded["kind"], recorded["host"], recorded["action"]) == (
        "interruption-warning",
        "ev-1",
        "terminate",
    )
    # Handed on once: one replacement for the two deliveries.
    replacements = [e for e in sandbox.executions("ev-1") if e not in executions_before]
    assert [e["name"] for e in replacements] == ["hosts.replace"]
    assert delta(sandbox.counts(), before) == {
        ("unknown", "dead_lettered"): 2,
        ("interruption-warning", "dead_lettered"): 2,
        ("state-change", "recorded"): 1,
        ("interruption-warning", "recorded"): 1,
        ("interruption-warning", "duplicate"): 1,
    }


def test_serve_setup_with_a_bad_region_exits_2_in_one_line_and_creates_nothing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    elsewhere = endpoint_client(sandbox.endpoint, "sqs", "eu-west-2")
    result = CliRunner().invoke(
        app, ["serve", "setup", "--sandbox", "--regions", "eu-west-2,mars-1"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --regions item 'mars-1' is not an AWS region. Use a region name such as "
        f"us-east-1 (a region newer than botocore {_botocore()} needs a newer botocore)."
    ]
    assert elsewhere.list_queues().get("QueueUrls", []) == []
    stacks = sandbox.folder / "default-state" / ".pulumi" / "stacks" / "mapt-events"
    assert not (stacks / "events-eu-west-2-mapt-events.json").exists()


def _botocore() -> str:
    import botocore

    return str(botocore.__version__)


# -- where the stacks live, and their removal (mapt serve setup/teardown) ----------------------
def events_state(backend: Path, region: str) -> Path:
    """The checkpoint of ``region``'s intake stack in the file backend at ``backend``."""
    return backend / ".pulumi" / "stacks" / "mapt-events" / f"events-{region}-mapt-events.json"


def serve(*args: str) -> Any:
    """``mapt serve ARGS`` in-process (its environment: the module's, set by the test)."""
    return CliRunner().invoke(app, ["serve", *args])


def error_line(result: Any) -> str:
    """The one ``Error:`` line on stderr, its last (after the sandbox's notice, if any)."""
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("Error:")] == lines[-1:], lines
    return str(lines[-1])


def running_host(database_url: str, name: str, region: str) -> None:
    """A managed host running in ``region``, as the service records it (its cost interval)."""
    from datetime import datetime, timezone

    from mapt.costs import Placement
    from mapt.service import open_database
    from mapt.service._costs import HostPlacement, record_placement

    database = open_database(database_url)
    try:
        where = HostPlacement(Placement(region, f"{region}a", ("t3.micro",), True, "Linux/UNIX"))
        with database.transaction() as connection:
            record_placement(
                connection, name, where, at=datetime.now(timezone.utc), reason="created"
            )
    finally:
        database.dispose()


def test_an_events_backend_holds_one_stack_per_region_reused_by_a_second_setup_and_torn_down(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    region = "eu-west-3"
    backend = sandbox.folder / "shared-events"
    sqs = boto3.client("sqs", endpoint_url=sandbox.endpoint, region_name=region)
    events = boto3.client("events", endpoint_url=sandbox.endpoint, region_name=region)

    made = serve("setup", "--sandbox", "--regions", region, "--events-backend", f"file://{backend}")
    assert made.exit_code == 0, made.output
    state = events_state(backend, region)
    assert state.is_file()
    assert not events_state(sandbox.folder / "default-state", region).exists()
    queues = sorted(sqs.list_queues()["QueueUrls"])
    assert len(queues) == 2
    assert f"{region}: {queues[0]}" in made.stdout or f"{region}: {queues[1]}" in made.stdout
    [rule] = events.list_rules()["Rules"]
    checkpoint = state.read_bytes()

    # A second server (or setup) given the same backend, here by its variable: reused.
    monkeypatch.setenv("MAPT_EVENTS_BACKEND", f"file://{backend}")
    again = serve("setup", "--sandbox", "--regions", region, "-o", "json")
    assert again.exit_code == 0, again.output
    assert sorted(sqs.list_queues()["QueueUrls"]) == queues
    assert events.list_rules()["Rules"] == [rule]
    assert state.read_bytes() == checkpoint  # not even an update without changes

    # A host runs there: refused, and nothing is removed.
    database_url = f"sqlite:///{sandbox.folder / 'teardown.sqlite3'}"
    running_host(database_url, "ev-teardown", region)
    refused = serve("teardown", "--sandbox", "--regions", region, "--database-url", database_url)
    assert refused.exit_code == 2
    line = error_line(refused)
    assert line.startswith("Error: managed hosts still run where the event intake would be ")
    assert f"({region}: ev-teardown)" in line and "--force" in line
    assert sorted(sqs.list_queues()["QueueUrls"]) == queues
    assert state.read_bytes() == checkpoint

    forced = serve(
        "teardown", "--sandbox", "--regions", region, "--database-url", database_url, "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert f"{region}: event intake removed" in forced.stdout
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert events.list_rules()["Rules"] == []
    assert not state.exists()
    assert not (backend / ".pulumi" / "history" / "mapt-events").exists()

    # Nothing left: said, exit 0, for the region and for every region.
    for args in (("--regions", region), ("--all-regions",)):
        gone = serve("teardown", "--sandbox", *args)
        assert gone.exit_code == 0, gone.output
        assert "nothing to remove" in gone.stdout

    # No backend given: the local state, as before.
    monkeypatch.delenv("MAPT_EVENTS_BACKEND")
    local = events_state(sandbox.folder / "default-state", region)
    assert serve("setup", "--sandbox", "--regions", region).exit_code == 0
    assert local.is_file() and len(sqs.list_queues()["QueueUrls"]) == 2
    assert serve("teardown", "--sandbox", "--all-regions").exit_code == 0
    assert not local.exists() and sqs.list_queues().get("QueueUrls", []) == []


def test_teardown_without_the_services_database_is_refused_not_taken_for_no_hosts(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MAPT_DATABASE_URL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the default: absent
    region = "ap-south-1"
    backend = f"file://{tmp_path / 'events'}"
    sqs = boto3.client("sqs", endpoint_url=sandbox.endpoint, region_name=region)
    assert (
        serve("setup", "--sandbox", "--regions", region, "--events-backend", backend).exit_code == 0
    )

    refused = serve("teardown", "--sandbox", "--regions", region, "--events-backend", backend)
    assert refused.exit_code == 2, refused.output
    assert error_line(refused).startswith("Error: no service database at ")
    assert not (tmp_path / "data").exists()  # none was created to be found empty
    assert len(sqs.list_queues()["QueueUrls"]) == 2
    forced = serve(
        "teardown", "--sandbox", "--regions", region, "--events-backend", backend, "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert sqs.list_queues().get("QueueUrls", []) == []


def test_a_bad_events_backend_exits_2_naming_it_and_creates_nothing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    region = "ca-central-1"
    sqs = boto3.client("sqs", endpoint_url=sandbox.endpoint, region_name=region)
    for command in ("setup", "teardown"):
        result = serve(command, "--sandbox", "--regions", region, "--events-backend", "bucket/x")
        assert result.exit_code == 2
        assert result.stderr.strip().splitlines() == [
            "Error: --events-backend: backend URL 'bucket/x' has no scheme; use file://PATH "
            "or s3://BUCKET[/PREFIX]"
        ]
    monkeypatch.setenv("MAPT_EVENTS_BACKEND", "ftp://state")
    result = serve("setup", "--sandbox", "--regions", region)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: MAPT_EVENTS_BACKEND=ftp://state (from the environment): backend URL "
        "'ftp://state' is not supported; use "
        "file://PATH or s3://BUCKET[/PREFIX]"
    ]
    monkeypatch.delenv("MAPT_EVENTS_BACKEND")
    for command in ("setup", "teardown"):
        result = serve(command, "--sandbox", "--regions", region, "--events-secrets-provider", "x")
        assert result.exit_code == 2, result.output
        assert error_line(result).startswith(
            "Error: --events-secrets-provider: secrets provider 'x' is not supported"
        )
    served = serve("--events-secrets-provider", "x", "--port", "0")
    assert served.exit_code == 2, served.output
    assert error_line(served).startswith("Error: --events-secrets-provider: secrets provider")
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert not events_state(sandbox.folder / "default-state", region).exists()


def test_teardown_of_an_unreadable_backend_fails_and_never_says_nothing_to_remove(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    backend = sandbox.folder / "broken-events"
    state = events_state(backend, "ap-south-1")
    state.parent.mkdir(parents=True)
    state.write_text("{ not a checkpoint")
    for args in (("--regions", "ap-south-1"), ("--all-regions",)):
        result = serve("teardown", "--sandbox", "--force", "--events-backend", f"file://{backend}",
                       *args)  # fmt: skip
        assert result.exit_code == 1, result.output
        line = error_line(result)
        assert line.startswith("Error: cannot read the ")
        assert str(state) in line
        assert "nothing to remove" not in result.stdout
    assert state.read_text() == "{ not a checkpoint"


def test_a_running_leader_sets_a_watched_regions_intake_up_again_after_a_teardown(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.set_up()
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    intake, _ = sandbox.queues()
    state = events_state(sandbox.events_backend, REGION)
    removed = serve("teardown", "--sandbox", "--regions", REGION, "--force",
                    "--events-backend", f"file://{sandbox.events_backend}")  # fmt: skip
    assert removed.exit_code == 0, removed.output
    assert f"{REGION}: event intake removed" in removed.stdout

    def set_up_again() -> bool:
        urls = sandbox.client("sqs").list_queues().get("QueueUrls", [])
        return len(urls) == 2 and intake not in urls and state.is_file()

    wait_for(set_up_again, timeout=INTAKE_TIMEOUT)
    assert sandbox.server is not None
    assert any(
        str(line.get("message", "")).startswith(f"the event queue of {REGION} is gone")
        for line in sandbox.server.log()
    )
    fresh, _ = sandbox.queues()
    # The new queue is polled: an event on it is taken off (dead-lettered: not mapt's).
    sandbox.client("sqs").send_message(QueueUrl=fresh, MessageBody="not an event")
    [(body, reason)] = sandbox.dead_letters(1)
    assert (body, reason.split(":")[0]) == ("not an event", "not JSON")
