"""The first-boot scripts of a host: cloud-init for RHEL and Fedora, PowerShell for Windows.

Pure functions from plain values to text, so they are tested without Pulumi. The
cloud-init document is written as JSON (a subset of YAML that cloud-init reads), which
quotes any user name or password correctly. The PowerShell script embeds only values
that are validated or generated from a safe alphabet (see ``HostRequest`` and the
password's character set), each inside a single-quoted string.
"""

from __future__ import annotations

import json
from typing import Any

from mapt.core import InputError
from mapt.targets.aws._request import SSH_PORT, HostRequest

# Characters the generated Windows password may use besides letters and digits: none of
# them is special inside a single-quoted PowerShell string.
PASSWORD_SPECIALS = "!#%*-_=+"


def cloud_config(
    request: HostRequest,
    *,
    subscription_password: str | None = None,
) -> str:
    """The ``#cloud-config`` document for a RHEL or Fedora host.

    The instance's key pair gives the default user its SSH key; this adds what a CI
    job expects: the root partition grown to the disk size, podman installed, and on
    RHEL the optional subscription (registration only: accounts use Simple Content
    Access now, where ``auto-attach`` fails).
    """
    if request.is_windows:
        raise InputError("cloud-init user data is for rhel and fedora hosts, not windows")
    config: dict[str, Any] = {
        "growpart": {"mode": "auto", "devices": ["/"]},
        "resize_rootfs": True,
        "packages": ["podman"],
    }
    if request.has_subscription:
        if not subscription_password:
            raise InputError("the RHEL subscription password is empty")
        config["rh_subscription"] = {
            "username": request.rh_subscription_username,
            "password": subscription_password,
        }
    return "#cloud-config\n" + json.dumps(config, indent=2, sort_keys=True) + "\n"


def windows_userdata(request: HostRequest, *, public_key: str, password: str) -> str:
    """The EC2Launch PowerShell script that makes a Windows host reachable by SSH.

    It creates (or updates) the user with the generated password as an administrator,
    installs and starts OpenSSH Server, authorizes mapt's key for administrators, makes
    PowerShell the SSH shell and opens port 22 in Windows Firewall. Every step is
    idempotent, so a replacement spot instance runs the same script to the same end.
    """
    if not request.is_windows:
        raise InputError(f"Windows user data is for windows hosts, not {request.os}")
    allowed = set(PASSWORD_SPECIALS) | set("abcdefghijklmnopqrstuvwxyz")
    allowed |= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    if not password or not set(password) <= allowed:
        raise InputError("the Windows password has characters outside its safe set")
    key = public_key.strip()
    if not key.startswith("ssh-") or "'" in key or "\n" in key:
        raise InputError("the SSH public key is not a single OpenSSH public key line")
    user = request.username
    return f"""<powershell>
$ErrorActionPreference = 'Stop'
$user = '{user}'
$password = ConvertTo-SecureString '{password}' -AsPlainText -Force
if (Get-LocalUser -Name $user -ErrorAction SilentlyContinue) {{
  Set-LocalUser -Name $user -Password $password -PasswordNeverExpires $true
}} else {{
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
</powershell>
<persist>false</persist>
"""
