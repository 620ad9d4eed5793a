"""The first-boot scripts of a host: cloud-init for RHEL and Fedora, PowerShell for Windows.

Pure functions from plain values to text, so they are tested without Pulumi. They hold
no secret: user data is readable by anyone allowed ``ec2:DescribeInstanceAttribute`` or
``ec2:DescribeLaunchTemplateVersions``, and from the instance metadata service by every
process on the host. Secrets (the RHEL subscription password, the runner registration
token, the Windows password) reach the host over SSH once it is ready (``_setup``).
Until then, and on a machine that never gets them (a spot replacement), the file
``AWAITING_SECRETS_FILE`` lists what the machine is still waiting for.

The cloud-init document is written as JSON (a subset of YAML that cloud-init reads)
with non-ASCII characters kept as they are (``ensure_ascii=False``): YAML reads JSON's
``\\uXXXX`` escapes only inside double quotes, so keeping the characters themselves
is the one spelling both agree on. The PowerShell script embeds only values that are
validated, each inside a single-quoted string.

A request with an expiry makes the machine power itself off at that time, from the
inside, so it goes away even when nothing outside runs on time (a cancelled CI job,
lost state). The instance's shutdown behaviour is ``terminate`` (see ``_compute``),
so powering off ends it. Linux gets a systemd timer and Windows a scheduled task,
both written on first boot and kept across reboots; both fire at once on a boot
after the expiry, should the machine have been stopped over it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from mapt.core import InputError
from mapt.integrations.github import linux_runner_script, windows_runner_script
from mapt.targets.aws._request import SSH_PORT, HostRequest
from mapt.targets.aws._tags import utc_timestamp

# mapt's folder on a Linux host, and where cloud-init writes the runner's install script.
STATE_DIR = "/var/lib/mapt"
RUNNER_SCRIPT = f"{STATE_DIR}/github-runner.sh"
# Present while the machine waits for the secrets mapt delivers over SSH (one name per
# line, see HostRequest.awaited_secrets); mapt removes it once they are in place.
AWAITING_SECRETS_FILE = f"{STATE_DIR}/awaiting-secrets"
WINDOWS_STATE_DIR = "C:\\ProgramData\\mapt"
WINDOWS_AWAITING_SECRETS_FILE = f"{WINDOWS_STATE_DIR}\\awaiting-secrets"

EXPIRY_UNIT = "mapt-expiry"
_SYSTEMD_DIR = "/etc/systemd/system"


def cloud_config(request: HostRequest) -> str:
    """The ``#cloud-config`` document for a RHEL or Fedora host.

    The instance's key pair gives the default user its SSH key; this adds what a CI
    job expects: the root partition grown to the disk size, podman installed, the
    runner installed (not registered) when one is asked for, and the list of secrets
    the machine awaits. The RHEL subscription is registered over SSH afterwards.
    """
    if request.is_windows:
        raise InputError("cloud-init user data is for rhel and fedora hosts, not windows")
    config: dict[str, Any] = {
        "growpart": {"mode": "auto", "devices": ["/"]},
        "resize_rootfs": True,
        "packages": ["podman"],
    }
    write_files: list[dict[str, str]] = []
    runcmd: list[list[str]] = []
    if request.awaited_secrets:
        write_files.append(
            {
                "path": AWAITING_SECRETS_FILE,
                "permissions": "0644",
                "content": "".join(f"{name}\n" for name in request.awaited_secrets),
            }
        )
    if request.expires_at is not None:
        write_files += expiry_units(request.expires_at)
        runcmd += [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", f"{EXPIRY_UNIT}.timer"],
        ]
    if request.runner is not None:
        script = linux_runner_script(request.runner, request.arch, run_as=request.username)
        write_files.append({"path": RUNNER_SCRIPT, "permissions": "0700", "content": script})
        runcmd.append(["bash", RUNNER_SCRIPT])
    if write_files:
        config["write_files"] = write_files
    if runcmd:
        config["runcmd"] = runcmd
    return cloud_init_document(config)


def cloud_init_document(config: Mapping[str, Any]) -> str:
    """``config`` as a ``#cloud-config`` document: JSON, which YAML reads as the same values.

    ``ensure_ascii=False`` keeps every character as it is: JSON's escapes of characters
    outside the Basic Multilingual Plane (surrogate pairs such as ``\\ud83d\\udd11``)
    are two characters to YAML, so an escaped value would not survive the round trip.
    """
    return (
        "#cloud-config\n" + json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )


def expiry_units(expires_at: datetime) -> list[dict[str, str]]:
    """cloud-init ``write_files`` entries: a systemd timer that powers off at ``expires_at``.

    A unit file on disk (not a transient ``systemd-run`` timer) outlives a reboot, and
    ``Persistent=true`` makes systemd catch up on the event if the machine was off at
    that time (stopped over its expiry): it powers off as soon as it is up again.
    """
    moment = expires_at.astimezone(timezone.utc)
    stamp = utc_timestamp(moment)
    calendar = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    service = (
        "[Unit]\n"
        f"Description=Power off: this mapt machine expired at {stamp}\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "ExecStart=/usr/bin/systemctl poweroff\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=Power off this mapt machine at its expiry, {stamp}\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={calendar}\n"
        "AccuracySec=1s\n"
        "Persistent=true\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return [
        {
            "path": f"{_SYSTEMD_DIR}/{EXPIRY_UNIT}.service",
            "permissions": "0644",
            "content": service,
        },
        {"path": f"{_SYSTEMD_DIR}/{EXPIRY_UNIT}.timer", "permissions": "0644", "content": timer},
    ]


def windows_userdata(request: HostRequest, *, public_key: str) -> str:
    """The EC2Launch PowerShell script that makes a Windows host reachable by SSH.

    It creates the user as an administrator (with a random password made on the
    machine and known to nobody: mapt logs in with its key, and sets the password over
    SSH to the one EC2 generated for the instance, see ``_setup``), installs and starts
    OpenSSH Server, authorizes mapt's key for administrators, makes PowerShell the SSH
    shell, opens port 22 in Windows Firewall and installs the runner if asked. Every
    step is idempotent, so a replacement spot instance runs the same script to the
    same end. With an expiry, the power-off task is registered first, so a later step
    that fails cannot leave a machine that never expires.
    """
    if not request.is_windows:
        raise InputError(f"Windows user data is for windows hosts, not {request.os}")
    key = public_key.strip()
    if not key.startswith("ssh-") or "'" in key or "\n" in key:
        raise InputError("the SSH public key is not a single OpenSSH public key line")
    user = request.username
    expiry = "" if request.expires_at is None else _windows_expiry(request.expires_at)
    runner = "" if request.runner is None else windows_runner_script(request.runner)
    awaited = "`n".join(request.awaited_secrets)
    return f"""<powershell>
$ErrorActionPreference = 'Stop'
{expiry}$user = '{user}'
New-Item -ItemType Directory -Force -Path '{WINDOWS_STATE_DIR}' | Out-Null
[System.IO.File]::WriteAllText('{WINDOWS_AWAITING_SECRETS_FILE}', "{awaited}`n")
if (-not (Get-LocalUser -Name $user -ErrorAction SilentlyContinue)) {{
  # A password nobody knows, made here: mapt sets the real one over SSH.
  $bytes = New-Object byte[] 32
  [Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
  $password = ConvertTo-SecureString ([Convert]::ToBase64String($bytes) + 'aA1!') `
    -AsPlainText -Force
  New-LocalUser -Name $user -Password $password -PasswordNeverExpires `
    -AccountNeverExpires | Out-Null
}}
$members = Get-LocalGroupMember -Group 'Administrators' |
  ForEach-Object {{ $_.Name.Split('\\')[-1] }}
if ($members -notcontains $user) {{
  Add-LocalGroupMember -Group 'Administrators' -Member $user
}}
$capability = Get-WindowsCapability -Online -Name 'OpenSSH.Server*' | Select-Object -First 1
if ($capability -and $capability.State -ne 'Installed') {{
  Add-WindowsCapability -Online -Name $capability.Name | Out-Null
}}
Set-Service -Name sshd -StartupType Automatic
Start-Service sshd
$keys = 'C:\\ProgramData\\ssh\\administrators_authorized_keys'
[System.IO.File]::WriteAllText($keys, '{key}' + "`n")
icacls.exe $keys /inheritance:r /grant 'Administrators:F' /grant 'SYSTEM:F' | Out-Null
$shell = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe'
New-ItemProperty -Path 'HKLM:\\SOFTWARE\\OpenSSH' -Name DefaultShell -Value $shell `
  -PropertyType String -Force | Out-Null
Restart-Service sshd
if (-not (Get-NetFirewallRule -Name 'mapt-sshd' -ErrorAction SilentlyContinue)) {{
  New-NetFirewallRule -Name 'mapt-sshd' -DisplayName 'OpenSSH Server (mapt)' -Enabled True `
    -Direction Inbound -Protocol TCP -Action Allow -LocalPort {SSH_PORT} | Out-Null
}}
{runner}</powershell>
<persist>false</persist>
"""


def _windows_expiry(expires_at: datetime) -> str:
    """PowerShell that registers a SYSTEM task running ``shutdown /s /t 0`` at expiry.

    The UTC timestamp is parsed into local time (what the trigger takes) on the
    machine itself, whatever its time zone. ``StartWhenAvailable`` runs a missed
    task as soon as the machine is up again, as ``Persistent=true`` does on Linux.
    """
    stamp = utc_timestamp(expires_at)
    return f"""$expiry = [DateTime]::Parse('{stamp}', [Globalization.CultureInfo]::InvariantCulture)
$trigger = New-ScheduledTaskTrigger -Once -At $expiry
$action = New-ScheduledTaskAction -Execute 'shutdown.exe' -Argument '/s /t 0'
$settings = New-ScheduledTaskSettingsSet -StartWhenAvailable
Register-ScheduledTask -TaskName '{EXPIRY_UNIT}' -Trigger $trigger -Action $action `
  -Settings $settings -User 'NT AUTHORITY\\SYSTEM' -RunLevel Highest -Force | Out-Null
"""
