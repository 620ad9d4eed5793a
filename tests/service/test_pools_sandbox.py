"""Pools on the sandbox: ``mapt serve --sandbox`` against a moto_server, driven over HTTP
and through ``mapt pool ... --server``.

One server (the real command, its pool loop passing every second) and one moto_server
for the module; each test has a pool of its own, of on-demand members (each a real
instance with an Elastic IP on the endpoint). What the service says is checked
against the endpoint with boto3: the instances running, the addresses that exist.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.sandbox_service import SandboxService, sandbox_service
from tests.harness.service import wait_for

REPOSITORY = Path(__file__).resolve().parents[2]
FAMILIES = "m5,m6a,m6i,m7a,m7i,t3,t3a"
REGION = "us-east-1"
# Sandbox deployments on a loaded 2-core machine: generous, never waited out.
DEPLOY_TIMEOUT = 600.0


class Sandbox(SandboxService):
    def ec2(self) -> Any:
        return self.aws("ec2", REGION)

    def create_pool(self, *, target: int, maximum: int, **strategy: Any) -> str:
        name = f"sb-{secrets.token_hex(3)}"
        template = {
            "os": "fedora", "cpus": 2, "memory": 8, "region": REGION,
            "compute_families": FAMILIES, "backed_url": f"file://{self.state}",
        }  # fmt: skip
        with self.client() as client:
            answer = client.post(
                "/v1/pools",
                json={
                    "name": name,
                    "capacity": {"target": target, "minimum": 0, "maximum": maximum},
                    "host": template,
                    "strategy": strategy,
                },
            )
        assert answer.status_code == 201, answer.text
        return name

    def members(self, pool: str) -> list[dict[str, Any]]:
        with self.client() as client:
            answer = client.get(f"/v1/pools/{pool}/hosts")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["hosts"])

    def settled(self, pool: str, running_members: int) -> list[dict[str, Any]]:
        """Wait until exactly ``running_members`` members are RUNNING and none is on its
        way; the members then (the loop converges on its own)."""

        def converged() -> list[dict[str, Any]] | None:
            members = self.members(pool)
            states = [member["state"] for member in members]
            assert "ERROR" not in states, members
            if states.count("RUNNING") == running_members and set(states) <= {"RUNNING"}:
                return members
            return None

        return list(wait_for(converged, timeout=DEPLOY_TIMEOUT, interval=0.3))

    def instances(self, project: str) -> dict[str, dict[str, Any]]:
        """The project's instances on the endpoint: id -> the instance."""
        reservations = self.ec2().describe_instances(
            Filters=[{"Name": "tag:mapt:project", "Values": [project]}]
        )["Reservations"]
        return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}

    def running_instance(self, project: str) -> dict[str, Any]:
        [instance] = [
            i for i in self.instances(project).values() if i["State"]["Name"] == "running"
        ]
        return instance

    def addresses(self) -> set[str]:
        """Every Elastic IP that exists on the endpoint."""
        return {a["PublicIp"] for a in self.ec2().describe_addresses()["Addresses"]}

    def lease(self, pool: str, **body: Any) -> httpx.Response:
        with self.client() as client:
            return client.post(
                f"/v1/pools/{pool}/leases",
                json={"ttl": "30m", "holder": "ci", **body},
                timeout=DEPLOY_TIMEOUT,
            )

    def get_lease(self, pool: str, lease_id: str) -> dict[str, Any]:
        with self.client() as client:
            answer = client.get(f"/v1/pools/{pool}/leases/{lease_id}")
        assert answer.status_code in (200, 201), answer.text
        return dict(answer.json()["lease"])

    def mapt(self, *args: str) -> Any:
        """``mapt ARGS --server URL`` in this process, with the module's token."""
        from typer.testing import CliRunner

        from mapt.cli import app

        return CliRunner().invoke(
            app,
            [*args, "--server", self.server.url],
            env={"MAPT_TOKEN": self.token, "GITHUB_OUTPUT": ""},
        )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    folder = tmp_path_factory.mktemp("pools-sandbox")
    with sandbox_service(
        folder,
        "--workers",
        "3",
        "--pool-interval",
        "1s",
    ) as service:
        yield Sandbox(service.endpoint, service.server, service.token, service.state)


def test_a_pool_converges_spreads_over_zones_and_scaling_never_removes_a_leased_member(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Target 3 (one member a zone), then 4, then 2, with a member leased through
    ``mapt pool lease`` throughout; released, it is replaced."""
    pool = sandbox.create_pool(target=3, maximum=4)
    members = sandbox.settled(pool, 3)
    instances = {m["name"]: sandbox.running_instance(m["name"]) for m in members}
    # Real machines, each in the zone its record names, each zone another.
    zones = {m["name"]: m["allocation"]["availability_zone"] for m in members}
    assert {n: i["Placement"]["AvailabilityZone"] for n, i in instances.items()} == zones
    assert len(set(zones.values())) == 3, zones

    # A lease through the CLI: the connection files of the member it names.
    folder = tmp_path / "conn"
    leased = sandbox.mapt(
        "pool", "lease", pool, "--conn-details-output", str(folder), "--holder", "job-1",
        "--ttl", "30m",
    )  # fmt: skip
    assert leased.exit_code == 0, leased.output
    lease_id = leased.stdout.strip()
    holder = sandbox.get_lease(pool, lease_id)["host"]
    machine = instances[holder]
    assert (folder / "host").read_text() == machine["PublicIpAddress"] + "\n"
    assert (folder / "username").read_text() == "fedora\n"
    _assert_key_of(folder / "id_rsa", machine, sandbox)

    # Up to 4 (a zone holds two) and down to 2: the leased member stays, on the same
    # machine.
    with sandbox.client() as client:
        assert client.patch(f"/v1/pools/{pool}", json={"capacity": {"target": 4}}).is_success
    assert holder in {m["name"] for m in sandbox.settled(pool, 4)}
    with sandbox.client() as client:
        assert client.patch(f"/v1/pools/{pool}", json={"capacity": {"target": 2}}).is_success
    remaining = sandbox.settled(pool, 2)
    assert holder in {m["name"] for m in remaining}
    assert sandbox.running_instance(holder)["InstanceId"] == machine["InstanceId"]
    [other] = [m["name"] for m in remaining if m["name"] != holder]
    # Removals take the most crowded zones first: the two left are in two zones.
    assert len({m["allocation"]["availability_zone"] for m in remaining}) == 2

    # Released (strategy replace): the member is destroyed, a fresh one takes its place.
    released = sandbox.mapt("pool", "release", pool, lease_id)
    assert released.exit_code == 0, released.output
    after = sandbox.settled(pool, 2)
    assert holder not in {m["name"] for m in after} and other in {m["name"] for m in after}
    wait_for(
        lambda: sandbox.instances(holder)[machine["InstanceId"]]["State"]["Name"] == "terminated",
        timeout=DEPLOY_TIMEOUT,
    )


def test_the_faaspot_verbs_wait_and_refresh_ip_releases_the_old_addresses(
    sandbox: Sandbox,
) -> None:
    """add, refresh-ip and remove with ``?wait=true``, then through ``mapt pool``."""
    pool = sandbox.create_pool(target=0, maximum=3)
    with sandbox.client() as client:
        added = client.put(
            f"/v1/pools/{pool}/hosts",
            params={"count": 2, "wait": "true", "timeout": DEPLOY_TIMEOUT},
            timeout=None,
        )
    assert added.status_code == 200, added.text
    execution = added.json()["execution"]
    assert (execution["name"], execution["status"]) == ("pools.add", "succeeded"), execution
    members = sandbox.members(pool)
    assert sorted(execution["result"]["hosts"]) == sorted(m["name"] for m in members)
    assert {m["state"] for m in members} == {"RUNNING"}
    before = {m["name"]: m["address"] for m in members}
    for name, address in before.items():
        assert sandbox.running_instance(name)["PublicIpAddress"] == address
    assert set(before.values()) <= sandbox.addresses()

    with sandbox.client() as client:
        refreshed = client.patch(
            f"/v1/pools/{pool}/hosts",
            params={"wait": "true", "timeout": DEPLOY_TIMEOUT},
            json={"refresh_ip": "all"},
            timeout=None,
        )
    assert refreshed.status_code == 200, refreshed.text
    execution = refreshed.json()["execution"]
    assert execution["status"] == "succeeded", execution
    after = {m["name"]: m["address"] for m in sandbox.members(pool)}
    # Each member a new address of its own, on its machine; the old ones released.
    assert len(set(after.values())) == 2
    assert not set(after.values()) & set(before.values())
    for name, address in after.items():
        assert execution["result"]["results"][name]["old_address"] == before[name]
        assert sandbox.running_instance(name)["PublicIpAddress"] == address
    existing = sandbox.addresses()
    assert set(after.values()) <= existing and not set(before.values()) & existing

    # One member by its address, through the CLI: only that one changes.
    first, second = sorted(after)
    cli = sandbox.mapt("pool", "refresh-ip", pool, "--ip", after[first])
    assert cli.exit_code == 0, cli.output
    assert cli.stdout == f"pools.refresh-ip pools/{pool}: succeeded\n"
    again = {m["name"]: m["address"] for m in sandbox.members(pool)}
    assert again[second] == after[second] and again[first] != after[first]
    assert after[first] not in sandbox.addresses()

    # Removed with ?wait=true: its machine is gone and the target dropped.
    with sandbox.client() as client:
        removed = client.delete(
            f"/v1/pools/{pool}/hosts",
            params={"host": first, "wait": "true", "timeout": DEPLOY_TIMEOUT},
            timeout=None,
        )
        assert removed.status_code == 200, removed.text
        assert removed.json()["execution"]["status"] == "succeeded"
        assert client.get(f"/v1/pools/{pool}").json()["pool"]["capacity"]["target"] == 1
    assert {i["State"]["Name"] for i in sandbox.instances(first).values()} == {"terminated"}

    # Through the CLI: one added (and waited for), then one removed.
    cli_added = sandbox.mapt("pool", "add", pool)
    assert cli_added.exit_code == 0, cli_added.output
    assert cli_added.stdout == f"pools.add pools/{pool}: succeeded\n"
    members = sandbox.settled(pool, 2)
    [new] = [m["name"] for m in members if m["name"] != second]
    assert sandbox.running_instance(new)["PublicIpAddress"] == next(
        m["address"] for m in members if m["name"] == new
    )
    cli_removed = sandbox.mapt("pool", "remove", pool, "--host", new)
    assert cli_removed.exit_code == 0, cli_removed.output
    assert cli_removed.stdout == f"hosts.delete {new}: succeeded\n"
    assert [m["name"] for m in sandbox.members(pool)] == [second]
    assert {i["State"]["Name"] for i in sandbox.instances(new).values()} == {"terminated"}


def test_leases_wait_fail_clearly_expire_and_are_counted_in_the_metrics(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A pool of one at its maximum: a second lease waits for the first's release (a
    fresh member), a third fails with 423 / exit 3, an expired one is reclaimed."""
    pool = sandbox.create_pool(target=1, maximum=1, recycle="keep")
    [member] = sandbox.settled(pool, 1)

    first = sandbox.lease(pool)
    assert first.status_code == 201, first.text
    assert first.json()["connection"]["address"] == member["address"]
    first_id = first.json()["lease"]["id"]

    # Full: a lease without waiting is refused at once, and says why.
    refused = sandbox.lease(pool)
    assert refused.status_code == 423, refused.text
    assert refused.json()["error"]["message"].startswith(
        f"pool {pool!r} has no idle member (maximum 1, all taken or starting). Retry later"
    )
    cli = sandbox.mapt(
        "pool", "lease", pool, "--conn-details-output", str(tmp_path / "none"),
        "--wait-seconds", "1",
    )  # fmt: skip
    assert cli.exit_code == 3, cli.output
    assert cli.stderr.startswith(f"Error: pool {pool!r} has no idle member after 1s")
    assert not (tmp_path / "none").exists()

    # A lease that waits: counted as waiting, then served once the first is released
    # (kept idle by the strategy).
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(sandbox.lease(pool, wait=300, ttl="5s"))
    )
    waiting.start()
    try:
        wait_for(
            lambda: sandbox.metrics().get(("mapt_leases_waiting", (("pool", pool),))) == 1,
            timeout=60,
        )
    finally:
        released = sandbox.mapt("pool", "release", pool, first_id)
        waiting.join(timeout=DEPLOY_TIMEOUT)
    assert released.exit_code == 0, released.output
    [second] = answers
    assert second.status_code == 201, second.text
    assert second.json()["lease"]["host"] == member["name"]  # kept: idle again
    second_id = second.json()["lease"]["id"]

    # Expired (its ttl 5 s): the loop reclaims it, and the member is leased again.
    wait_for(lambda: sandbox.get_lease(pool, second_id)["state"] == "expired", timeout=60)
    third = sandbox.lease(pool, wait=60)
    assert third.status_code == 201, third.text

    metrics = sandbox.metrics()
    served = {
        how: metrics.get(("mapt_leases_served_total", (("pool", pool), ("served", how))))
        for how in ("at_once", "after_wait", "cold_start")
    }
    assert served == {"at_once": 2.0, "after_wait": 1.0, "cold_start": None}
    assert metrics[("mapt_leases_waiting", (("pool", pool),))] == 0
    assert metrics[("mapt_leases_expired_total", (("pool", pool),))] == 1


def _assert_key_of(path: Path, machine: dict[str, Any], sandbox: Sandbox) -> None:
    """The private key file opens the machine: its public half is the key pair's the
    machine was launched with."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    [pair] = sandbox.ec2().describe_key_pairs(KeyNames=[machine["KeyName"]], IncludePublicKey=True)[
        "KeyPairs"
    ]
    assert pair["PublicKey"].split()[:2] == public.decode().split()[:2]
