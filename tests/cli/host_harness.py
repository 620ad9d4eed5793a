"""The host CLI under test: in-memory engine, stubbed Auto Scaling, readiness recorder.

Shared by ``test_host.py`` and ``test_host_github.py`` (fixtures in ``conftest.py``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from typer.testing import CliRunner

from mapt.cli import app
from mapt.cli._services import Services
from mapt.stacks import InMemoryEngine
from mapt.targets import SshAccess
from mapt.targets.aws import HostRequest, HostSetup
from tests.harness.pulumi_mocks import default_answers, default_computed
from tests.harness.spot_market import SpotMarket

FEDORA_OWNER = "125523088429"
RHEL_OWNER = "309956199498"
FEDORA_41 = "Fedora-Cloud-Base-AmazonEC2.x86_64-41-20261001.0"
SCORED = {"use1-az4": 9, "eun1-az1": 9, "aps1-az1": 8, "usw2-az1": 7}
FAMILIES = "m5,m6a,m6i,m7a,m7i,t3,t3a"
WRITES = ("Create", "Delete", "Run", "Put", "Register", "Modify", "Associate", "Allocate")


class AutoScaling:
    """Auto Scaling as the launch check sees it, through a stubbed botocore client.

    ``refusals`` are AWS status messages handed out one per check, in order: while
    any is left the group reports that failed launch activity; after that its
    instance is in service. The product's own ``verify_spot_launch`` reads them.
    """

    def __init__(self) -> None:
        self.refusals: list[str] = []
        self.checked: list[tuple[str, str]] = []

    def launch(self, region: str, group_name: str) -> str:
        import boto3
        from botocore.stub import Stubber

        from mapt.targets.aws import verify_spot_launch

        self.checked.append((region, group_name))
        client = boto3.client("autoscaling", region_name=region)
        stub = Stubber(client)
        created = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
        group: dict[str, Any] = {
            "AutoScalingGroupName": group_name,
            "MinSize": 1,
            "MaxSize": 1,
            "DesiredCapacity": 1,
            "DefaultCooldown": 300,
            "AvailabilityZones": [f"{region}a"],
            "HealthCheckType": "EC2",
            "CreatedTime": created,
            "Instances": [],
        }
        if self.refusals:
            message = self.refusals.pop(0)
            stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [group]})
            activity = {
                "ActivityId": "a-1",
                "AutoScalingGroupName": group_name,
                "Description": "Launching a new EC2 instance.  Status Reason: " + message,
                "Cause": "At 2026-11-22T08:00:00Z a user request created an AutoScalingGroup.",
                "StartTime": created,
                "StatusCode": "Failed",
                "StatusMessage": message,
            }
            stub.add_response("describe_scaling_activities", {"Activities": [activity]})
        else:
            group["Instances"] = [
                {
                    "InstanceId": "i-0123456789abcdef0",
                    "AvailabilityZone": f"{region}a",
                    "LifecycleState": "InService",
                    "HealthStatus": "Healthy",
                    "ProtectedFromScaleIn": False,
                }
            ]
            stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [group]})
        with stub:
            return verify_spot_launch(
                SimpleNamespace(client=lambda *a, **k: client), region, group_name
            )  # type: ignore[arg-type]


class Harness:
    """The CLI with an in-memory engine, a readiness recorder and a state folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.engine = InMemoryEngine(answers=default_answers(), computed=default_computed)
        self.ready: list[SshAccess] = []
        self.readiness_error: Exception | None = None
        self.backend = f"file://{tmp_path / 'state'}"
        self.conn = tmp_path / "conn"
        self.runner = CliRunner()
        self.engine_args: list[tuple[str | None, bool]] = []
        self.auto_scaling = AutoScaling()
        # What the secrets delivery was asked to do, and the runner id it reports.
        self.setups: list[HostRequest] = []
        self.runner_id = 4242
        self.setup_error: Exception | None = None

    def _engine(self, secrets_provider: str | None, debug: bool) -> InMemoryEngine:
        self.engine_args.append((secrets_provider, debug))
        return self.engine

    def _readiness(self, access: SshAccess) -> None:
        self.ready.append(access)
        if self.readiness_error is not None:
            raise self.readiness_error

    def _setup(self, access: SshAccess, request: HostRequest, outputs: Any) -> HostSetup:
        self.setups.append(request)
        if self.setup_error is not None:
            raise self.setup_error
        runner = request.runner
        password = "Delivered-Passw0rd" if request.is_windows else None
        return HostSetup(
            "i-0123456789abcdef0",
            runner_id=self.runner_id if runner is not None else None,
            password=password,
            runner_scope=runner.scope.api_path if runner is not None else None,
        )

    def invoke(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> Any:
        services = Services(
            engine=self._engine,
            readiness=self._readiness,
            launch=self.auto_scaling.launch,
            setup=self._setup,
        )
        return self.runner.invoke(app, list(args), obj=services, env=env, input=input)

    def create(
        self,
        *extra: str,
        project: str = "demo",
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> Any:
        return self.invoke(
            "aws", "host", "create", "--os", "fedora", "--project-name", project,
            "--backed-url", self.backend, "--cpus", "2", "--memory", "8",
            "--compute-families", FAMILIES, *extra, env=env, input=input,
        )  # fmt: skip

    def destroy(self, *extra: str, project: str = "demo") -> Any:
        return self.invoke(
            "aws", "host", "destroy", "--project-name", project, "--backed-url", self.backend,
            *extra,
        )  # fmt: skip


def spot_calls(market: SpotMarket) -> int:
    return len(market.calls_to("DescribeSpotPriceHistory")) + len(
        market.calls_to("GetSpotPlacementScores")
    )
