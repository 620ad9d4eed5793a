"""After boot: hand a ready host its secrets over SSH, and say which machine got them.

User data holds no secret (see ``_userdata``). Once readiness has seen the host answer
over SSH, ``configure_host`` opens one more SSH session and runs, in order:

1. the instance id of the machine behind the address (``cloud-init query instance_id``
   on Linux, the instance metadata service on Windows): the machine that gets the
   secrets, recorded in the host stack as ``configured_instance``;
2. Windows: the account's password is set to the administrator password EC2 generated
   for this instance, read with ``GetPasswordData`` and decrypted with the key pair's
   private key (``windows_password``); the password goes on standard input;
3. RHEL with a subscription: ``subscription-manager register --username U``, the
   password typed at its prompt on a terminal (it refuses to read one from a pipe
   and mapt never puts one in a command line); an already registered host is left as
   it is;
4. the GitHub runner: its configure script, the token on standard input; the runner
   id it prints is recorded in the host stack (``runner_id``) so destroy removes
   exactly that runner;
5. the awaiting-secrets marker file is removed.

No step writes a secret to a file or a process's arguments. Every step is idempotent,
so a re-run of create configures the same machine again without harm.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mapt.core import OperationError, get_logger, register_secret
from mapt.integrations.github import (
    LINUX_RUNNER_DIR,
    linux_runner_configure_script,
    runner_id_from_output,
    windows_runner_configure_script,
)
from mapt.targets._readiness import RemoteCommand, SshAccess, remote_session
from mapt.targets.aws._request import HostRequest
from mapt.targets.aws._userdata import AWAITING_SECRETS_FILE, WINDOWS_AWAITING_SECRETS_FILE

if TYPE_CHECKING:
    import boto3

log = get_logger(__name__)

# How long EC2 may take to make a new Windows instance's password available.
DEFAULT_PASSWORD_TIMEOUT = 20 * 60.0
DEFAULT_PASSWORD_POLL = 15.0
# What subscription-manager prints before it reads the password from the terminal.
SUBSCRIPTION_PROMPT = "Password:"
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")

# instance id -> that instance's (decrypted) administrator password.
WindowsPassword = Callable[[str], str]


@dataclass(frozen=True)
class HostSetup:
    """What ``configure_host`` did: the machine it configured and what it learned there.

    ``runner_scope`` is the API path of the repository or organization ``runner_id``
    is registered in (``/repos/acme/app``): the two are recorded together, so destroy
    removes that runner where it is, whatever a later run's flags say.
    """

    instance_id: str
    runner_id: int | None = None
    password: str | None = field(default=None, repr=False)
    runner_scope: str | None = None


def configure_host(
    access: SshAccess,
    request: HostRequest,
    *,
    windows_password: WindowsPassword | None = None,
    command_timeout: float | None = None,
    runner_dir: str = LINUX_RUNNER_DIR,
) -> HostSetup:
    """Deliver the host's secrets over SSH (see the module docstring); say what was done.

    ``windows_password`` is required for Windows hosts (``fetch_windows_password``
    bound to the region and key). ``runner_dir`` is where the Linux first-boot script
    installed the runner. A step that fails raises ``OperationError`` naming the step
    and the machine; what was done before it stays done.
    """
    timeouts = {} if command_timeout is None else {"command_timeout": command_timeout}
    with remote_session(access, **timeouts) as run:
        instance_id = _instance_id(run(identify_command(request)))
        log.info("delivering %s to %s", ", ".join(request.awaited_secrets), instance_id)
        password = None
        if request.is_windows:
            if windows_password is None:
                raise OperationError("a Windows host needs EC2's password to be set up")
            password = windows_password(instance_id)
            run(windows_password_command(request, password))
        subscription = subscription_command(request)
        if subscription is not None:
            run(subscription)
        runner_id = runner_scope = None
        runner = runner_command(request, runner_dir=runner_dir)
        if runner is not None and request.runner is not None:
            runner_scope = request.runner.scope.api_path
            runner_id = runner_id_from_output(run(runner))
            if runner_id is None:
                raise OperationError(
                    f"the GitHub runner on {instance_id} was configured but did not report "
                    "its id (no agentId in its .runner file)"
                )
        run(delivered_command(request))
    log.info("%s has its secrets", instance_id)
    return HostSetup(
        instance_id=instance_id, runner_id=runner_id, password=password, runner_scope=runner_scope
    )


def identify_command(request: HostRequest) -> RemoteCommand:
    """Print the instance id of the machine the session landed on."""
    if request.is_windows:
        return _powershell(
            "reading the instance id",
            "$token = Invoke-RestMethod -Method PUT -Uri 'http://169.254.169.254/latest/api/token' "
            "-Headers @{'X-aws-ec2-metadata-token-ttl-seconds' = '60'}\n"
            "Invoke-RestMethod -Uri 'http://169.254.169.254/latest/meta-data/instance-id' "
            "-Headers @{'X-aws-ec2-metadata-token' = $token}\n",
        )
    return RemoteCommand("reading the instance id", "cloud-init query instance_id")


def subscription_command(request: HostRequest) -> RemoteCommand | None:
    """Register a RHEL host with Red Hat, the password typed at the prompt; None without."""
    user, password = request.rh_subscription_username, request.rh_subscription_password
    if user is None or password is None:
        return None
    script = (
        "if subscription-manager identity >/dev/null 2>&1; then "
        'echo "mapt: this system is already registered"; exit 0; fi; '
        'exec subscription-manager register --username "$1"'
    )
    command = f"sudo -n sh -c {shlex.quote(script)} mapt-register {shlex.quote(user)}"
    return RemoteCommand(
        "registering with Red Hat", command, secret=password, prompt=SUBSCRIPTION_PROMPT
    )


def runner_command(
    request: HostRequest, *, runner_dir: str = LINUX_RUNNER_DIR
) -> RemoteCommand | None:
    """Register the installed GitHub runner, the token on standard input; None without."""
    spec = request.runner
    if spec is None:
        return None
    purpose = f"registering GitHub runner {spec.name}"
    if request.is_windows:
        return _powershell(purpose, windows_runner_configure_script(spec), secret=spec.token)
    script = linux_runner_configure_script(spec, run_as=request.username, install_dir=runner_dir)
    return RemoteCommand(purpose, f"sudo -n bash -c {shlex.quote(script)}", secret=spec.token)


def windows_password_command(request: HostRequest, password: str) -> RemoteCommand:
    """Set the Windows account's password, read from standard input."""
    script = (
        "$ErrorActionPreference = 'Stop'\n"
        "$password = ConvertTo-SecureString ([Console]::In.ReadLine()) -AsPlainText -Force\n"
        f"Set-LocalUser -Name '{request.username}' -Password $password "
        "-PasswordNeverExpires $true\n"
    )
    return _powershell(f"setting the password of {request.username}", script, secret=password)


def delivered_command(request: HostRequest) -> RemoteCommand:
    """Remove the awaiting-secrets marker: this machine has everything."""
    if request.is_windows:
        return _powershell(
            "marking the secrets delivered",
            f"Remove-Item -LiteralPath '{WINDOWS_AWAITING_SECRETS_FILE}' -ErrorAction "
            "SilentlyContinue\n",
        )
    return RemoteCommand(
        "marking the secrets delivered", f"sudo -n rm -f {shlex.quote(AWAITING_SECRETS_FILE)}"
    )


def fetch_windows_password(
    session: boto3.Session,
    region: str,
    instance_id: str,
    private_key_pem: str,
    *,
    timeout: float = DEFAULT_PASSWORD_TIMEOUT,
    poll_interval: float = DEFAULT_PASSWORD_POLL,
) -> str:
    """The administrator password EC2 generated for ``instance_id``, decrypted.

    EC2Launch encrypts it with the key pair's public key; ``GetPasswordData`` returns
    it base64-encoded once it exists (botocore's ``password_data_available`` waiter
    polls for that), and the key pair's private key (RSA, PKCS#1 v1.5) decrypts it.
    """
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    client = session.client("ec2", region_name=region)
    delay = max(0, int(poll_interval))
    attempts = max(1, int(timeout // max(1.0, poll_interval)))
    try:
        client.get_waiter("password_data_available").wait(
            InstanceId=instance_id, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
        )
        data = client.get_password_data(InstanceId=instance_id)["PasswordData"].strip()
    except WaiterError as error:
        raise OperationError(
            f"EC2 had no password for Windows instance {instance_id} after {timeout:g} s: "
            f"{error.last_response.get('Error', {}).get('Message', 'no password data')}",
            hint="The image may not run EC2Launch's password generation (custom images).",
        ) from None
    except (BotoCoreError, ClientError) as error:
        raise OperationError(
            f"cannot read the password of Windows instance {instance_id}: {error}"
        ) from None
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise OperationError("the host's key pair is not RSA: EC2 passwords need one")
    try:
        password = key.decrypt(base64.b64decode(data), padding.PKCS1v15()).decode("utf-8")
    except ValueError:
        raise OperationError(
            f"the password EC2 holds for Windows instance {instance_id} does not decrypt "
            "with the host's key"
        ) from None
    register_secret(password)
    return password


def _instance_id(output: str) -> str:
    found = _INSTANCE_ID.findall(output)
    if not found:
        summary = " ".join(output.split())[-200:] or "nothing"
        raise OperationError(f"the host did not say its instance id (it printed: {summary})")
    return str(found[-1])


def _powershell(purpose: str, script: str, *, secret: str | None = None) -> RemoteCommand:
    """A PowerShell script as one command line, whatever quotes and lines it holds.

    ``-EncodedCommand`` takes the script as base64 of UTF-16LE; the script holds no
    secret (those go on standard input), so its encoding in the command line is safe.
    """
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    command = f"powershell.exe -NoProfile -NonInteractive -EncodedCommand {encoded}"
    return RemoteCommand(purpose, command, secret=secret)
