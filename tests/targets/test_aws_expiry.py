"""Expiry: a host with ``expires_at`` is tagged with it and removes itself at that time."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from mapt.allocation import AllocationResult
from mapt.core import InputError
from mapt.targets.aws import HostRequest
from mapt.targets.aws._tags import parse_timestamp, utc_timestamp
from mapt.targets.aws._userdata import EXPIRY_UNIT, cloud_config, windows_userdata
from tests.harness.pulumi_mocks import FAKE_PUBLIC_KEY
from tests.harness.skips import needs_program
from tests.targets.test_aws_host_program import (
    ASG,
    CASES,
    INSTANCE,
    ON_DEMAND,
    SPOT,
    of_type,
    one,
    run_host,
    taggable,
)

EXPIRES = datetime(2026, 11, 1, 14, 30, 5, tzinfo=timezone.utc)
STAMP = "2026-11-01T14:30:05Z"
SCHEDULE = "aws:autoscaling/schedule:Schedule"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def test_expiry_is_kept_in_utc_to_the_second() -> None:
    plus_two = timezone(timedelta(hours=2))
    request = HostRequest("rhel", expires_at=datetime(2026, 11, 1, 16, 30, 5, 999_999, plus_two))
    assert request.expires_at == EXPIRES
    assert request.expires_at is not None and request.expires_at.tzinfo == timezone.utc
    assert HostRequest("rhel").expires_at is None


def test_an_expiry_without_a_timezone_is_refused_naming_it() -> None:
    with pytest.raises(InputError, match=r"expiry 2026-11-01T14:30:05 has no timezone"):
        HostRequest("fedora", expires_at=datetime(2026, 11, 1, 14, 30, 5))
    with pytest.raises(InputError, match=r"expiry '2h' is not a date and time"):
        HostRequest("fedora", expires_at="2h")  # type: ignore[arg-type]


def test_timestamps_are_utc_seconds_with_z_and_read_back_defensively() -> None:
    assert utc_timestamp(EXPIRES) == STAMP
    assert utc_timestamp(EXPIRES.astimezone(timezone(timedelta(hours=-5)))) == STAMP
    with pytest.raises(ValueError, match="no timezone"):
        utc_timestamp(datetime(2026, 11, 1))
    assert parse_timestamp(STAMP) == EXPIRES
    assert parse_timestamp("2026-11-01T16:30:05+02:00") == EXPIRES
    for junk in ("", "soon", "2026-11-01T14:30:05", "2026-13-01T00:00:00Z"):
        assert parse_timestamp(junk) is None, junk


@pytest.mark.parametrize(("allocation", "os_name", "airgap"), CASES)
def test_every_taggable_resource_carries_the_expiry(
    allocation: AllocationResult, os_name: str, airgap: bool
) -> None:
    request = HostRequest(os_name, airgap=airgap, expires_at=EXPIRES)  # type: ignore[arg-type]
    run, _ = run_host(allocation, request)
    checked = 0
    for resource in run.resources:
        if not taggable(resource.type):
            continue
        tags = resource.inputs["tags"]
        as_dict = {t["key"]: t["value"] for t in tags} if resource.type == ASG else tags
        assert as_dict["mapt:expires-at"] == STAMP, resource.name
        checked += 1
    assert checked >= 8


def test_without_an_expiry_nothing_is_tagged_scheduled_or_set_to_terminate() -> None:
    for allocation in (SPOT, ON_DEMAND):
        run, _ = run_host(allocation, HostRequest("rhel"))
        assert not of_type(run, SCHEDULE)
        for resource in run.resources:
            assert "mapt:expires-at" not in str(resource.inputs.get("tags", "")), resource.name
            assert "instanceInitiatedShutdownBehavior" not in resource.inputs, resource.name
    template = one(run_host(SPOT, HostRequest("rhel"))[0], TEMPLATE)
    assert "write_files" not in base64.b64decode(template.inputs["userData"]).decode()


def test_spot_host_scales_to_zero_at_expiry_and_its_instances_terminate_on_power_off() -> None:
    run, _ = run_host(SPOT, HostRequest("fedora", expires_at=EXPIRES))
    schedule = one(run, SCHEDULE)
    assert schedule.inputs["autoscalingGroupName"] == one(run, ASG).inputs["name"]
    assert schedule.inputs["startTime"] == STAMP
    assert schedule.inputs["scheduledActionName"] == "mapt-expiry"
    sizes = (schedule.inputs[k] for k in ("minSize", "maxSize", "desiredCapacity"))
    assert tuple(sizes) == (0, 0, 0)
    assert "recurrence" not in schedule.inputs  # once, not every day
    template = one(run, TEMPLATE)
    assert template.inputs["instanceInitiatedShutdownBehavior"] == "terminate"
    # The instances it launches power off at the same time from the inside.
    config = json.loads(base64.b64decode(template.inputs["userData"]).decode().split("\n", 1)[1])
    timer = next(f for f in config["write_files"] if f["path"].endswith(".timer"))
    assert "OnCalendar=2026-11-01 14:30:05 UTC\n" in timer["content"]


def test_on_demand_host_terminates_on_power_off_and_keeps_its_first_boot_script(
    mocker: MockerFixture,
) -> None:
    import pulumi_aws

    spy = mocker.spy(pulumi_aws.ec2.Instance, "__init__")
    run, _ = run_host(ON_DEMAND, HostRequest("windows", expires_at=EXPIRES))
    assert not of_type(run, SCHEDULE)
    host = one(run, INSTANCE, "host")
    assert host.inputs["instanceInitiatedShutdownBehavior"] == "terminate"
    script = host.inputs["userData"]  # no secret in it: plain
    assert f"[DateTime]::Parse('{STAMP}'" in script
    # A re-run with a new expiry changes the user data: it must not stop and start the
    # running host to rewrite a script that only runs at first boot.
    (call,) = [c for c in spy.call_args_list if c.args[1:2] == ("host",)]
    assert "user_data" in call.kwargs["opts"].ignore_changes


def test_cloud_config_installs_an_expiry_timer_that_survives_reboots() -> None:
    config = json.loads(cloud_config(HostRequest("rhel", expires_at=EXPIRES)).split("\n", 1)[1])
    files = {f["path"]: f for f in config["write_files"]}
    service = files[f"/etc/systemd/system/{EXPIRY_UNIT}.service"]["content"]
    timer = files[f"/etc/systemd/system/{EXPIRY_UNIT}.timer"]["content"]
    assert "ExecStart=/usr/bin/systemctl poweroff\n" in service
    assert "OnCalendar=2026-11-01 14:30:05 UTC\n" in timer
    assert "Persistent=true\n" in timer  # fires on the next boot if it was missed
    assert "WantedBy=timers.target\n" in timer
    assert config["runcmd"] == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "mapt-expiry.timer"],
    ]
    assert config["packages"] == ["podman"]  # the rest of first boot is unchanged


@needs_program("systemd-analyze")
def test_the_expiry_units_are_valid_systemd_units(tmp_path: Path) -> None:
    config = json.loads(cloud_config(HostRequest("rhel", expires_at=EXPIRES)).split("\n", 1)[1])
    for entry in config["write_files"]:
        (tmp_path / Path(entry["path"]).name).write_text(entry["content"])
    timer = tmp_path / f"{EXPIRY_UNIT}.timer"
    result = subprocess.run(
        ["systemd-analyze", "verify", str(timer)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    calendar = subprocess.run(
        ["systemd-analyze", "calendar", "2026-11-01 14:30:05 UTC"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Normalized form: 2026-11-01 14:30:05 UTC" in calendar.stdout


def test_windows_registers_the_power_off_task_before_anything_that_can_fail() -> None:
    script = windows_userdata(
        HostRequest("windows", expires_at=EXPIRES),
        public_key=FAKE_PUBLIC_KEY,
    )
    lines = script.splitlines()
    assert lines[:3] == [
        "<powershell>",
        "$ErrorActionPreference = 'Stop'",
        f"$expiry = [DateTime]::Parse('{STAMP}', [Globalization.CultureInfo]::InvariantCulture)",
    ]
    task = script[script.index("$expiry = ") : script.index("$user = ")]
    assert "New-ScheduledTaskTrigger -Once -At $expiry" in task
    assert "-Execute 'shutdown.exe' -Argument '/s /t 0'" in task
    assert "New-ScheduledTaskSettingsSet -StartWhenAvailable" in task
    assert "Register-ScheduledTask -TaskName 'mapt-expiry'" in task
    assert "-User 'NT AUTHORITY\\SYSTEM'" in task
    plain = windows_userdata(HostRequest("windows"), public_key=FAKE_PUBLIC_KEY)
    assert "ScheduledTask" not in plain
    assert plain == script.replace(task, "")  # the rest of the script is unchanged
