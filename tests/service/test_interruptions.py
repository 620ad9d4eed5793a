"""Interruptions end to end: ``mapt serve --sandbox`` against a moto_server, over HTTP.

One server (the real command, with a short replacement bound and a short circuit
breaker) and one moto_server are shared by the module. AWS's side is played with
boto3 on the endpoint: the reclaim of a spot instance is Auto Scaling's
``TerminateInstanceInAutoScalingGroup`` (without lowering the desired capacity the
group launches a replacement, as after a real reclaim; lowering it leaves the place
without one, as when nothing launches; a zone listed by ``Sandbox.refusing_launches``
refuses its launches with AWS's failed activity, as when it has no capacity: the
endpoint patches moto with ``tests/harness/refusing_moto.py``). The events are put on
the server's intake queue (the region's, which the server sets up for its hosts'
regions) as EventBridge delivers them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.harness.sandbox_service import SandboxService, sandbox_service
from tests.harness.service import wait_for

REPOSITORY = Path(__file__).resolve().parents[2]
FAMILIES = "m5,m6a,m6i,m7a,m7i,t3,t3a"
# The group's bound to replace an interrupted instance in place before the host moves:
# waited out once (a place with no capacity). It counts from the replacement's start,
# which follows the warning; the in-place replacement is there once the test's reclaim
# (right after the host shows ERROR) is, so the bound need not cover a worker's start.
REPLACEMENT_TIMEOUT = 15
# Two interruptions of one place within the window open its breaker for the cooldown.
# The window is the gap between the event times ("time", to the second) of interruptions
# that must not count together: the pool's two warnings are sent at once (at most a
# second apart), one host's two interruptions are more than a window apart.
BREAKER_WINDOW = 3
# Never waited out, so that on a loaded machine the replacements always find the breaker
# still open (a worker's start took 25 s): the test moves the recorded interruptions back
# by the cooldown instead (``Sandbox.age_interruptions``), as if it had passed.
BREAKER_COOLDOWN = 600
# A sandbox deployment on a loaded 2-core machine: generous, never waited out.
DEPLOY_TIMEOUT = 300.0
# The intake's setup of a region (its stack on the endpoint) and a long poll (1 s here).
INTAKE_TIMEOUT = 120.0


def warning(region: str, instance: str) -> dict[str, Any]:
    """AWS's two-minute warning, as EventBridge puts it on the queue (sent now)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:ec2:{region}:123456789012:instance/{instance}"],
        "detail": {"instance-id": instance, "instance-action": "terminate"},
    }


class Sandbox(SandboxService):
    def fields(self, **more: Any) -> dict[str, Any]:
        return {
            "os": "fedora", "spot": True, "cpus": 2, "memory": 8,
            "compute_families": FAMILIES, "backed_url": f"file://{self.state}", **more,
        }  # fmt: skip

    def create(self, name: str, **more: Any) -> dict[str, Any]:
        with self.client() as client:
            answer = client.post(
                "/v1/hosts",
                json=self.fields(name=name, **more),
                params={"wait": "true", "timeout": DEPLOY_TIMEOUT},
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["execution"]["status"] == "succeeded", answer.text
        return self.host(name)

    def named_address(self, name: str) -> list[str]:
        """The values of Route53's A record ``name`` (in any zone), as a client resolves it."""
        route53 = self.aws("route53", "us-east-1")
        values = [
            value["Value"]
            for zone in route53.list_hosted_zones()["HostedZones"]
            for record in route53.list_resource_record_sets(HostedZoneId=zone["Id"])[
                "ResourceRecordSets"
            ]
            if record["Name"].rstrip(".") == name and record["Type"] == "A"
            for value in record.get("ResourceRecords", [])
        ]
        return sorted(values)

    def public_address(self, instance: str, region: str) -> str:
        [reservation] = self.aws("ec2", region).describe_instances(InstanceIds=[instance])[
            "Reservations"
        ]
        return str(reservation["Instances"][0]["PublicIpAddress"])

    def host(self, name: str) -> dict[str, Any]:
        with self.client() as client:
            answer = client.get(f"/v1/hosts/{name}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["host"] if "host" in answer.json() else answer.json())

    def state_of(self, name: str, state: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            host = self.host(name)
            assert host["state"] != "DELETED", host
            return host if host["state"] == state else None

        return dict(wait_for(reached, timeout=DEPLOY_TIMEOUT, interval=0.1))

    def executions(self, name: str, operation: str) -> list[dict[str, Any]]:
        with self.client() as client:
            answer = client.get(
                "/v1/executions", params={"include_completed": "true", "target": name}
            )
        assert answer.status_code == 200, answer.text
        return [e for e in answer.json()["executions"] if e["name"] == operation]

    def group(self, name: str, region: str) -> dict[str, Any]:
        [group] = self.aws("autoscaling", region).describe_auto_scaling_groups(
            AutoScalingGroupNames=[f"mapt-host-{name}"]
        )["AutoScalingGroups"]
        return dict(group)

    def in_service(self, name: str, region: str) -> str:
        [instance] = [
            i["InstanceId"]
            for i in self.group(name, region)["Instances"]
            if i["LifecycleState"] == "InService"
        ]
        return str(instance)

    def intake_queue(self, region: str) -> str:
        """The region's intake queue, once the server's intake has set it up."""
        wait_for(
            lambda: any(
                str(e.get("message", "")).startswith(f"event intake of {region}: ")
                for e in self.server.log()
            ),
            timeout=INTAKE_TIMEOUT,
        )
        sqs = self.aws("sqs", region)
        urls = sqs.list_queues().get("QueueUrls", [])
        [intake] = [
            url
            for url in urls
            if "RedrivePolicy"
            in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        ]
        return str(intake)

    def deliver(self, region: str, *events: dict[str, Any]) -> None:
        """Put the EventBridge events on the region's intake queue, as EventBridge does."""
        self.aws("sqs", region).send_message_batch(
            QueueUrl=self.intake_queue(region),
            Entries=[
                {"Id": str(index), "MessageBody": json.dumps(event)}
                for index, event in enumerate(events)
            ],
        )

    def drained(self, region: str) -> bool:
        """Whether the intake queue holds no message, visible or being handled."""
        found = self.aws("sqs", region).get_queue_attributes(
            QueueUrl=self.intake_queue(region),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(found["ApproximateNumberOfMessages"])
            + int(found["ApproximateNumberOfMessagesNotVisible"])
            == 0
        )

    def events(self, host: str) -> list[str]:
        """The ids of the events recorded about ``host``."""
        import sqlalchemy as sa

        from mapt.service._schema import host_events

        engine = sa.create_engine(self.server.database_url)
        try:
            with engine.connect() as connection:
                return list(
                    connection.execute(
                        sa.select(host_events.c.id).where(host_events.c.host == host)
                    ).scalars()
                )
        finally:
            engine.dispose()

    def history(self, name: str) -> list[tuple[str, str | None]]:
        import sqlalchemy as sa

        from mapt.service._schema import host_intervals

        engine = sa.create_engine(self.server.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.select(host_intervals.c.start_reason, host_intervals.c.end_reason)
                    .where(host_intervals.c.host == name)
                    .order_by(host_intervals.c.started_at, host_intervals.c.id)
                ).all()
        finally:
            engine.dispose()
        return [(row.start_reason, row.end_reason) for row in rows]

    def spot_choice(self, name: str) -> dict[str, Any]:
        """The outputs of the project's ``spotOption-<project>`` stack, from its checkpoint."""
        [path] = self.state.glob(f"**/spotOption-{name}.json")
        resources = json.loads(path.read_text())["checkpoint"]["latest"]["resources"]
        [stack] = [r for r in resources if r["type"] == "pulumi:pulumi:Stack"]
        return dict(stack["outputs"])

    def age_interruptions(self, pool: str, by: timedelta) -> None:
        """Move the event times of the interruptions recorded for ``pool`` back by ``by``,
        behind the service's back: to its circuit breaker, which reads them from the
        records each time it is asked, that much time has passed since they came."""
        import sqlalchemy as sa

        from mapt.service._schema import host_events

        engine = sa.create_engine(self.server.database_url)
        try:
            with engine.begin() as connection:
                rows = connection.execute(
                    sa.select(host_events.c.id, host_events.c.event_time).where(
                        host_events.c.pool == pool
                    )
                ).all()
                for row in rows:
                    connection.execute(
                        host_events.update()
                        .where(host_events.c.id == row.id)
                        .values(event_time=row.event_time - by)
                    )
        finally:
            engine.dispose()
        assert rows, f"no interruption is recorded for pool {pool}"

    def breaker_quiet(self, region: str) -> None:
        """Wait until the last interruption of a host of no pool in ``region`` is older than
        the breaker's window: one more does not open the place's breaker."""
        import sqlalchemy as sa

        from mapt.service._interruptions import INTERRUPTING
        from mapt.service._schema import host_events

        engine = sa.create_engine(self.server.database_url)
        try:
            with engine.connect() as connection:
                last = connection.execute(
                    sa.select(sa.func.max(host_events.c.event_time)).where(
                        host_events.c.region == region,
                        host_events.c.pool.is_(None),
                        host_events.c.kind.in_([kind.value for kind in INTERRUPTING]),
                    )
                ).scalar()
        finally:
            engine.dispose()
        if last is None:
            return
        quiet = last.replace(tzinfo=timezone.utc) + timedelta(seconds=BREAKER_WINDOW + 1)
        wait_for(lambda: datetime.now(timezone.utc) > quiet, timeout=BREAKER_WINDOW + 30)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    folder = tmp_path_factory.mktemp("interruptions")
    with sandbox_service(
        folder,
        "--workers",
        "3",
        "--pool-interval",
        "1s",
        "--replacement-timeout",
        f"{REPLACEMENT_TIMEOUT}s",
        "--breaker-interruptions",
        "2",
        "--breaker-window",
        f"{BREAKER_WINDOW}s",
        "--breaker-cooldown",
        f"{BREAKER_COOLDOWN}s",
        refused_zones=folder / "refused-zones",
    ) as service:
        yield Sandbox(
            service.endpoint, service.server, service.token, service.state, service.refused_zones
        )


def test_an_interrupted_spot_host_is_replaced_in_place_then_moved_when_its_place_has_none(
    sandbox: Sandbox,
) -> None:
    """One host for both paths: a sandbox deployment is the expensive part of each.

    The host has a stable name in a hosted zone: each replacement repoints it."""
    sandbox.aws("route53", "us-east-1").create_hosted_zone(
        Name="ci.example.com", CallerReference="test-interruptions"
    )
    created = sandbox.create("pr-7", dns_zone="ci.example.com")
    assert created["state"] == "RUNNING"
    region = created["allocation"]["region"]
    zone = created["allocation"]["availability_zone"]
    first = sandbox.in_service("pr-7", region)
    assert sandbox.named_address("pr-7.ci.example.com") == [sandbox.public_address(first, region)]
    autoscaling = sandbox.aws("autoscaling", region)

    # AWS's two-minute warning: the host is ERROR with the event as its reason at once.
    event = warning(region, first)
    sandbox.deliver(region, event)
    failed = sandbox.state_of("pr-7", "ERROR")
    assert failed["last_error"]["type"] == "SpotInterruption"
    assert failed["last_error"]["message"].startswith(
        f"spot interruption warning for {first} in {zone} (terminate at "
    )
    # AWS reclaims the instance; the group launches a replacement in the same place.
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=first, ShouldDecrementDesiredCapacity=False
    )
    replaced = sandbox.state_of("pr-7", "RUNNING")
    second = sandbox.in_service("pr-7", region)
    assert second != first
    assert replaced["allocation"]["availability_zone"] == zone
    [replacement] = sandbox.executions("pr-7", "hosts.replace")
    assert replacement["status"] == "succeeded"
    assert replacement["result"]["outcome"] == "in-place"
    assert replaced["execution_id"] == replacement["id"]
    # The name now holds the replacement's address.
    assert sandbox.named_address("pr-7.ci.example.com") == [sandbox.public_address(second, region)]
    # The same event again (EventBridge delivers at least once) changes nothing, and
    # every message is gone from the queue once recorded.
    sandbox.deliver(region, event)
    wait_for(lambda: sandbox.drained(region), timeout=INTAKE_TIMEOUT)
    assert sandbox.events("pr-7") == [event["id"]]
    assert len(sandbox.executions("pr-7", "hosts.replace")) == 1
    assert sandbox.host("pr-7")["state"] == "RUNNING"
    # What it cost: the interrupted machine's time ends at the warning, the new one's starts.
    assert sandbox.history("pr-7") == [("created", "interrupted"), ("recovered", None)]

    # Later (after the breaker's window), the new instance is interrupted too, and this
    # time the place has no capacity: the group launches nothing within the bound.
    after = datetime.now(timezone.utc) + timedelta(seconds=BREAKER_WINDOW)
    wait_for(lambda: datetime.now(timezone.utc) > after, timeout=BREAKER_WINDOW + 30)
    candidates = replaced["allocation"]["candidates"]
    sandbox.deliver(region, warning(region, second))
    sandbox.state_of("pr-7", "ERROR")
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=second, ShouldDecrementDesiredCapacity=True
    )
    moved = sandbox.state_of("pr-7", "RUNNING")
    # It runs on the next ranked candidate, and the offer it left is recorded as failed.
    assert moved["allocation"]["availability_zone"] == candidates[0]["availability_zone"]
    assert moved["allocation"]["region"] == candidates[0]["region"]
    [left] = moved["allocation"]["failed"]
    assert (left["availability_zone"], left["reason"]) == (zone, "timeout")
    kept = sandbox.spot_choice("pr-7")
    assert kept["az"] == candidates[0]["availability_zone"]
    assert [(f["availability_zone"], f["reason"]) for f in kept["failed"]] == [(zone, "timeout")]
    # The name followed the host to its new place.
    third_region = moved["allocation"]["region"]
    third = sandbox.in_service("pr-7", third_region)
    assert sandbox.named_address("pr-7.ci.example.com") == [
        sandbox.public_address(third, third_region)
    ]
    outcomes = [
        (e["status"], e["result"]["outcome"]) for e in sandbox.executions("pr-7", "hosts.replace")
    ]
    assert outcomes == [("succeeded", "in-place"), ("succeeded", "moved")]
    assert sandbox.history("pr-7") == [
        ("created", "interrupted"),
        ("recovered", "interrupted"),
        ("recovered", None),
    ]
    samples = sandbox.metrics()
    key = ("kind", "interruption-warning"), ("pool", ""), ("region", region)
    assert samples[("mapt_interruptions_total", key)] == 2
    assert samples[("mapt_replacements_total", (("outcome", "in-place"),))] >= 1
    assert samples[("mapt_replacements_total", (("outcome", "moved"),))] >= 1


def test_an_interrupted_spot_host_whose_zone_refuses_launches_moves_on_aws_refusal(
    sandbox: Sandbox,
) -> None:
    """The host's zone has no capacity: its group's launch fails with AWS's reason, and
    the host moves on that reason (``InsufficientInstanceCapacity``), not on the bound."""
    created = sandbox.create("pr-8")
    region = created["allocation"]["region"]
    zone = created["allocation"]["availability_zone"]
    candidates = created["allocation"]["candidates"]
    first = sandbox.in_service("pr-8", region)
    sandbox.breaker_quiet(region)
    with sandbox.refusing_launches(zone):
        sandbox.deliver(region, warning(region, first))
        sandbox.state_of("pr-8", "ERROR")
        # AWS reclaims the instance; the group's launch of a replacement is refused.
        autoscaling = sandbox.aws("autoscaling", region)
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=first, ShouldDecrementDesiredCapacity=False
        )
        moved = sandbox.state_of("pr-8", "RUNNING")
    # It runs on the first ranked candidate outside the refusing zone (a candidate of
    # that zone, another instance type, is refused too); every offer it left is recorded
    # failed with AWS's reason, the interrupted one first.
    expected = next(c for c in candidates if c["availability_zone"] != zone)
    assert (moved["allocation"]["region"], moved["allocation"]["availability_zone"]) == (
        expected["region"],
        expected["availability_zone"],
    )
    left = [(f["availability_zone"], f["reason"]) for f in moved["allocation"]["failed"]]
    assert left and set(left) == {(zone, "InsufficientInstanceCapacity")}
    kept = sandbox.spot_choice("pr-8")
    assert kept["az"] == expected["availability_zone"]
    assert [(f["availability_zone"], f["reason"]) for f in kept["failed"]] == left
    [replacement] = sandbox.executions("pr-8", "hosts.replace")
    assert (replacement["status"], replacement["result"]["outcome"]) == ("succeeded", "moved")
    new_region = moved["allocation"]["region"]
    assert sandbox.in_service("pr-8", new_region) != first


def test_two_interruptions_in_a_pool_open_its_breaker_sending_launches_on_demand_until_it_closes(
    sandbox: Sandbox,
) -> None:
    with sandbox.client() as client:
        answer = client.post(
            "/v1/pools",
            json={
                "name": "ci",
                "capacity": {"target": 2, "minimum": 0, "maximum": 5},
                "host": sandbox.fields(),
                "strategy": {"fallback_on_demand": True},
            },
        )
        assert answer.status_code == 201, answer.text

    def members(count: int) -> list[dict[str, Any]] | None:
        with sandbox.client() as client:
            found = client.get("/v1/pools/ci/hosts").json()["hosts"]
        assert not [m for m in found if m["state"] == "ERROR" and m["execution_id"] is None]
        running = [m for m in found if m["state"] == "RUNNING"]
        return running if len(running) == count and len(found) == count else None

    first, second = wait_for(lambda: members(2), timeout=DEPLOY_TIMEOUT, interval=0.5)
    region = first["allocation"]["region"]
    assert second["allocation"]["region"] == region  # the best offer, for both
    # Both members' instances are interrupted at once: their place's breaker opens.
    # Their instances are looked up first, so that both warnings carry the same second
    # (an autoscaling call between them could outlast the breaker's window on a loaded
    # machine).
    instances = [sandbox.in_service(m["name"], region) for m in (first, second)]
    sandbox.deliver(region, *(warning(region, instance) for instance in instances))
    for member in (first, second):
        sandbox.state_of(member["name"], "ERROR")
    opened_at = datetime.now(timezone.utc)
    open_key = ("mapt_breaker_open", (("pool", "ci"), ("region", region)))
    assert sandbox.metrics()[open_key] == 1

    # The next launch of the pool is on demand (its strategy falls back to it).
    with sandbox.client() as client:
        answer = client.patch("/v1/pools/ci", json={"capacity": {"target": 3}})
        assert answer.status_code == 200, answer.text

    def launched(known: set[str]) -> dict[str, Any] | None:
        with sandbox.client() as client:
            found = client.get("/v1/pools/ci/hosts").json()["hosts"]
        new = [m for m in found if m["name"] not in known]
        return new[0] if new else None

    third = wait_for(lambda: launched({first["name"], second["name"]}), timeout=60)
    assert datetime.now(timezone.utc) < opened_at + timedelta(seconds=BREAKER_COOLDOWN)
    assert third["fields"]["spot"] is False
    assert third["fields"]["region"] == region

    # The interrupted members are not waited for in the open place: both go on demand.
    for member in (first, second, third):
        done = sandbox.state_of(member["name"], "RUNNING")
        assert done["allocation"]["spot_price"] is None, done["allocation"]
        assert done["allocation"]["region"] == region
    for member in (first, second):
        [replacement] = sandbox.executions(member["name"], "hosts.replace")
        assert replacement["result"]["outcome"] == "on-demand"
        [left] = sandbox.host(member["name"])["allocation"]["failed"]
        assert left["reason"] == "BreakerOpen"
    samples = sandbox.metrics()
    assert samples[("mapt_replacements_total", (("outcome", "on-demand"),))] == 2

    # After the cooldown (the recorded interruptions are moved back by it, as if it had
    # passed) the breaker is closed, and the pool launches on spot again.
    sandbox.age_interruptions("ci", timedelta(seconds=BREAKER_COOLDOWN))
    assert open_key not in sandbox.metrics()
    with sandbox.client() as client:
        answer = client.patch("/v1/pools/ci", json={"capacity": {"target": 4}})
        assert answer.status_code == 200, answer.text
    fourth = wait_for(lambda: launched({first["name"], second["name"], third["name"]}), timeout=60)
    assert fourth["fields"]["spot"] is True
    assert "spot_excluded_regions" not in fourth["fields"]
    # Every member's allocation is on demand now: none ranks spot zones, so the spot
    # member is not pinned (the on-demand ranking's zones may have no spot offer), and
    # it runs on spot.
    assert "availability_zone" not in fourth["fields"], fourth["fields"]
    done = sandbox.state_of(fourth["name"], "RUNNING")
    assert done["allocation"]["spot_price"] is not None, done["allocation"]
