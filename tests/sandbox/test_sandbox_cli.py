"""``--sandbox`` on the commands that change a deployment: the loopback guard, what the
sandbox refuses, and a Windows host whose secrets the sandbox cannot deliver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.spot_market import ApiCallLog

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def commands(tmp_path: Path) -> dict[str, list[str]]:
    backend = f"file://{tmp_path / 'state'}"
    return {
        "create": [
            "aws", "host", "create", "--project-name", "demo", "--os", "rhel",
            "--backed-url", backend, "--conn-details-output", str(tmp_path / "conn"),
        ],
        "destroy": ["aws", "host", "destroy", "--project-name", "demo", "--backed-url", backend],
        "sweep": ["aws", "sweep", "--regions", "us-east-1", "--backed-url", backend],
    }  # fmt: skip


ENDPOINTS = [
    pytest.param(
        {},
        "ec2 would call https://ec2.us-east-1.amazonaws.com (AWS_ENDPOINT_URL is not set)",
        id="unset",
    ),
    pytest.param(
        {"AWS_ENDPOINT_URL": "http://10.1.2.3:5000"},
        "ec2 would call http://10.1.2.3:5000 (AWS_ENDPOINT_URL=http://10.1.2.3:5000)",
        id="outside-loopback",
    ),
    pytest.param(
        {"AWS_ENDPOINT_URL": "http://localhost:5000"},
        "ec2 would call http://localhost:5000 (AWS_ENDPOINT_URL=http://localhost:5000)",
        id="a-name",
    ),
    pytest.param(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2": "http://192.0.2.7:5000",
        },
        "elbv2 would call http://192.0.2.7:5000 "
        "(AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2=http://192.0.2.7:5000)",
        id="one-service-outside",
    ),
    pytest.param(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        },
        "ec2 would call https://ec2.us-east-1.amazonaws.com "
        "(AWS_ENDPOINT_URL=http://127.0.0.1:5000 is ignored: "
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true)",
        id="ignored",
    ),
    pytest.param(
        {"config": "[default]\nendpoint_url = http://192.0.2.9:5000\n"},
        "ec2 would call http://192.0.2.9:5000 (endpoint_url of profile default in {config})",
        id="profile",
    ),
]  # fmt: skip


@pytest.mark.parametrize("command", ["create", "destroy", "sweep"])
@pytest.mark.parametrize(("environment", "named"), ENDPOINTS)
def test_the_sandbox_refuses_an_endpoint_off_the_loopback_before_calling_anything(
    command: str,
    environment: dict[str, str],
    named: str,
    api_calls: ApiCallLog,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        if name == "config":  # an AWS config file holding the endpoint
            config = tmp_path / "aws-config"
            config.write_text(value)
            monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
            named = named.format(config=config)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "default-state"))
    result = invoke(*commands(tmp_path)[command], "--sandbox")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"Error: --sandbox needs the AWS endpoint on 127.0.0.0/8 or ::1, but {named}. "
        "Start moto_server on 127.0.0.1 and set AWS_ENDPOINT_URL=http://127.0.0.1:<port>; "
        "see docs/sandbox.md."
    ]
    assert api_calls.calls == []
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("*"))
    assert not (tmp_path / "default-state").exists()


def test_mapt_sandbox_in_the_environment_is_the_flag(
    api_calls: ApiCallLog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    result = invoke(*commands(tmp_path)["destroy"], env={"MAPT_SANDBOX": "1"})
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: MAPT_SANDBOX=1 (from the environment): --sandbox needs the AWS endpoint on "
        "127.0.0.0/8 or ::1, but ec2 would call https://ec2.us-east-1.amazonaws.com"
    )
    assert api_calls.calls == []


@pytest.mark.parametrize(
    ("flags", "secret"),
    [
        (["--ghactions-runner-repo", "acme/app"], {"MAPT_GHACTIONS_RUNNER_TOKEN": "ghr-SECRET-1"}),
        (["--rh-subscription-username", "qe"], {"MAPT_RH_SUBSCRIPTION_PASSWORD": "SECRET-2"}),
    ],
    ids=["github-runner", "rhel-subscription"],
)
def test_secrets_the_sandbox_cannot_deliver_are_refused_before_anything_is_called(
    flags: list[str],
    secret: dict[str, str],
    api_calls: ApiCallLog,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "default-state"))
    result = invoke(*commands(tmp_path)["create"], "--sandbox", *flags, env=secret)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"Error: {flags[0]} cannot be used with --sandbox: nothing logs in to a sandbox host "
        "to deliver it"
    ]
    assert "SECRET" not in result.output
    assert api_calls.calls == []


def test_a_windows_host_in_the_sandbox_runs_without_its_password_and_says_so(
    endpoint: ApiCallLog, tmp_path: Path
) -> None:
    backend = f"file://{tmp_path / 'state'}"
    conn = tmp_path / "conn"
    created = invoke(
        "aws", "host", "create", "--sandbox", "--project-name", "win", "--os", "windows",
        "--region", "us-east-1", "--cpus", "2", "--memory", "8", "--backed-url", backend,
        "--conn-details-output", str(conn),
        env={"PULUMI_CONFIG_PASSPHRASE": "local only"},
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert created.stderr.splitlines()[0].startswith(
        "Sandbox: every AWS call goes to http://127.0.0.1:"
    )
    assert "Sandbox: windows-password not delivered (no SSH in the sandbox)." in created.stderr
    ec2 = boto3.client("ec2", region_name="us-east-1")
    address = (conn / "host").read_text().strip()
    (eip,) = ec2.describe_addresses(PublicIps=[address])["Addresses"]
    (reservation,) = ec2.describe_instances(InstanceIds=[eip["InstanceId"]])["Reservations"]
    assert reservation["Instances"][0]["State"]["Name"] == "running"
    assert not (conn / "userpassword").exists()

    listed = invoke("aws", "host", "list", "--backed-url", backend, "--output", "json")
    (host,) = json.loads(listed.stdout)["hosts"]
    assert host["host"] == address
    assert host["awaited_secrets"] == ["windows-password"]
    assert host["configured_instance"] is None  # never delivered: awaiting

    destroyed = invoke(
        "aws", "host", "destroy", "--sandbox", "--project-name", "win", "--backed-url", backend,
        env={"PULUMI_CONFIG_PASSPHRASE": "local only"},
    )  # fmt: skip
    assert destroyed.exit_code == 0, destroyed.output
    states = ec2.describe_instances(InstanceIds=[eip["InstanceId"]])["Reservations"]
    assert states[0]["Instances"][0]["State"]["Name"] == "terminated"
    assert ec2.describe_addresses()["Addresses"] == []
