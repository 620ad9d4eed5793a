"""Secrets delivered over SSH, against the real sshd on 127.0.0.1 the readiness tests use.

``sudo``, ``subscription-manager``, ``runuser`` and the runner's ``config.sh``/``svc.sh``
are stand-ins on the session's PATH. They record what they received (a SHA-256 of
each secret, never the secret itself) and, while they run, whether any process on the
machine has the secret in its command line. The subscription stand-in insists on a
terminal, as the real ``subscription-manager`` does in non-interactive sessions.
Windows cannot run here: its commands are checked as text, and the password path
(``GetPasswordData`` + decryption) against a stubbed EC2 client.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from mapt.core import OperationError
from mapt.integrations.github import RunnerScope, RunnerSpec
from mapt.targets import SshAccess, SshEndpoint
from mapt.targets.aws import HostRequest, configure_host, fetch_windows_password
from mapt.targets.aws._setup import (
    delivered_command,
    identify_command,
    runner_command,
    windows_password_command,
)
from tests.harness.skips import needs_program
from tests.targets.sshd import SSHD, KeyPair, SshServer, new_rsa_key

pytestmark = needs_program(SSHD)

PASSWORD = "Pä$$ wörd 'quoted' \"too\" 🔑 ;rm -rf /"
TOKEN = "AREGTOKENDELIVERED7QXJ2KBWZPM4"
INSTANCE = "i-0123456789abcdef0"
RUNNER = RunnerSpec(RunnerScope.for_repo("acme/app"), TOKEN, "mapt-demo", ("gpu",))

# `report SECRET` prints "sha=<SHA-256 of SECRET> argv-clean", or "argv-leak" when any
# process's command line holds SECRET. The secret reaches grep and sha256sum through
# pipes only, so the check puts it in no command line itself.
_SCAN = r"""
report() {
  local where=argv-clean
  if cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' \
      | grep -qF -f <(printf '%s\n' "$1"); then
    where=argv-leak
  fi
  echo "sha=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1) $where"
}
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Host:
    """The sshd plus stand-ins; ``log`` collects what they record, one line each."""

    def __init__(self, server: SshServer, root: Path) -> None:
        self.server = server
        self.log = root / "recorded.log"
        self.runner_dir = root / "actions-runner"
        self.runner_dir.mkdir()
        self.registered = root / "rhsm-registered"
        bin_dir = server.bin_dir
        log = self.log
        _executable(
            bin_dir / "sudo",
            f'#!/bin/bash\necho "sudo $1" >> "{log}"\n[ "$1" = -n ] && shift\nexec "$@"\n',
        )
        _executable(
            bin_dir / "subscription-manager",
            "#!/bin/bash\n"
            + _SCAN
            + f"""
if [ "$1" = identity ]; then [ -f "{self.registered}" ]; exit; fi
[ "$1" = register ] && [ "$2" = --username ] || exit 64
if [ ! -t 0 ]; then
  echo "Error: --password is a required parameter in non-interactive mode." >&2
  exit 64
fi
stty -echo
printf 'Password: '
IFS= read -r password
stty echo
echo
echo "register user=$3 $(report "$password")" >> "{log}"
touch "{self.registered}"
echo "The system has been registered with ID: 1234"
""",
        )
        _executable(
            bin_dir / "runuser",
            f'#!/bin/bash\necho "runuser $1 $2 $3" >> "{log}"\nshift 3\nexec "$@"\n',
        )
        _executable(
            self.runner_dir / "config.sh",
            "#!/bin/bash\n"
            + _SCAN
            + f"""
echo "config.sh $* $(report "$ACTIONS_RUNNER_INPUT_TOKEN")" >> "{log}"
printf '{{"agentId": 31337, "agentName": "mapt-demo", "poolId": 1}}' > .runner
""",
        )
        _executable(self.runner_dir / "svc.sh", f'#!/bin/bash\necho "svc.sh $*" >> "{log}"\n')
        server.set_cloud_init(0, INSTANCE)  # what `cloud-init query instance_id` prints

    def recorded(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return new_rsa_key()


@pytest.fixture
def host(tmp_path: Path, key: KeyPair) -> Iterator[Host]:
    server = SshServer(tmp_path, [key.public_openssh])
    yield Host(server, tmp_path)
    server.stop()


def access(host: Host, key: KeyPair) -> SshAccess:
    return SshAccess(SshEndpoint("127.0.0.1", host.server.user, key.private_pem, host.server.port))


def files_holding(secrets: tuple[str, ...], tmp_path: Path, since: float) -> list[Path]:
    """Files holding any of ``secrets`` in this test's folder or anywhere in /tmp.

    Only files whose inode changed at or after ``since`` (a ``time.time()`` taken
    before the test wrote anything) are read: a file the test wrote, or wrote into, has
    a later change time, which no process can set back (unlike the modification time).
    Reading the rest of /tmp (gigabytes of other runs' virtual environments on a shared
    machine) cannot find what this test leaked. Other tests' pytest folders are
    skipped: a test may write a secret on purpose. ``find`` walks the trees (a shared
    machine's /tmp holds ~10^6 files: walking and stating them in Python took 20 s of
    CPU) and lists every regular file, or link to one, changed in or after the second
    ``since`` falls in (links by any time: their target's is checked here); each listed
    file is checked again here as before, so the answer is the same. One walk serves
    every secret: each walk of a shared machine's /tmp costs seconds of CPU.
    """
    skipped = str(tmp_path.parents[1])
    listing = subprocess.run(
        ["find", str(tmp_path), "/tmp", "-path", skipped, "-prune", "-o",
         "-xtype", "f", "(", "-type", "l", "-o", "-newerct", f"@{int(since)}", ")", "-print0"],
        capture_output=True, text=True,
    )  # fmt: skip
    # Files that vanish or cannot be read while find walks are skipped, as below.
    unexpected = [
        line
        for line in listing.stderr.splitlines()
        if not line.endswith(("No such file or directory", "Permission denied"))
    ]
    assert listing.returncode in (0, 1) and not unexpected, listing.stderr
    found = []
    needles = [secret.encode() for secret in secrets]
    for path in filter(None, listing.stdout.split("\0")):
        try:
            info = os.stat(path)
            if stat.S_ISREG(info.st_mode) and info.st_ctime >= since:
                with open(path, "rb") as file:
                    content = file.read()
                if any(needle in content for needle in needles):
                    found.append(Path(path))
        except OSError:
            continue
    return found


def test_rhel_registration_and_runner_get_their_secrets_and_nothing_keeps_them(
    host: Host, key: KeyPair, tmp_path: Path
) -> None:
    # Change times are the kernel's coarse clock: a second of slack keeps every write.
    started = time.time() - 1
    request = HostRequest(
        "rhel",
        rh_subscription_username="dev@example.com",
        rh_subscription_password=PASSWORD,
        runner=RUNNER,
    )

    setup = configure_host(access(host, key), request, runner_dir=str(host.runner_dir))

    assert (setup.instance_id, setup.runner_id, setup.password) == (INSTANCE, 31337, None)
    assert setup.runner_scope == RUNNER.scope.api_path  # recorded with the id, for destroy
    recorded = host.recorded()
    # Typed at the tool's prompt on a terminal, byte for byte, in no command line.
    assert f"register user=dev@example.com sha={sha(PASSWORD)} argv-clean" in recorded
    # The runner got its token in the environment, not among its arguments.
    (config,) = [line for line in recorded if line.startswith("config.sh ")]
    assert config == (
        "config.sh --unattended --url https://github.com/acme/app --name mapt-demo "
        f"--labels gpu --replace sha={sha(TOKEN)} argv-clean"
    )
    assert "runuser -u ec2-user --" in recorded
    assert recorded[-3:-1] == ["svc.sh install ec2-user", "svc.sh start"]
    assert recorded.count("sudo -n") == 3  # registration, runner, marker: all as root
    assert host.server.cloud_init_calls() == ["query instance_id"]
    # No file anywhere holds either secret: not the stand-ins', not sshd's log, not /tmp.
    assert files_holding((PASSWORD, TOKEN), tmp_path, since=started) == []


def test_a_second_delivery_registers_nothing_again(host: Host, key: KeyPair) -> None:
    request = HostRequest(
        "rhel", rh_subscription_username="dev@example.com", rh_subscription_password=PASSWORD,
        runner=RUNNER,
    )  # fmt: skip
    first = configure_host(access(host, key), request, runner_dir=str(host.runner_dir))
    again = configure_host(access(host, key), request, runner_dir=str(host.runner_dir))
    assert again.runner_id == first.runner_id == 31337
    recorded = host.recorded()
    assert sum(line.startswith("register ") for line in recorded) == 1
    assert sum(line.startswith("config.sh ") for line in recorded) == 1


def test_a_failing_step_names_itself_and_never_shows_the_secret(host: Host, key: KeyPair) -> None:
    _executable(
        host.runner_dir / "config.sh",
        '#!/bin/bash\necho "got $ACTIONS_RUNNER_INPUT_TOKEN?" >&2\nexit 3\n',
    )
    request = HostRequest("fedora", runner=RUNNER)
    with pytest.raises(OperationError) as caught:
        configure_host(access(host, key), request, runner_dir=str(host.runner_dir))
    message = str(caught.value)
    assert "registering GitHub runner mapt-demo on host" in message
    assert "failed (exit 3)" in message and "got ***?" in message
    assert TOKEN not in message


def test_windows_commands_carry_no_secret_and_send_it_on_standard_input() -> None:
    request = HostRequest("windows", ami_username="tester", runner=RUNNER)
    commands = [
        identify_command(request),
        windows_password_command(request, "Ec2-Generated-Passw0rd"),
        runner_command(request),
        delivered_command(request),
    ]
    scripts = []
    for command in commands:
        assert command is not None
        program, *flags, encoded = command.command.split()
        assert (program, flags) == ("powershell.exe", ["-NoProfile", "-NonInteractive",
                                                       "-EncodedCommand"])  # fmt: skip
        scripts.append(base64.b64decode(encoded).decode("utf-16-le"))
    for script in scripts:
        assert TOKEN not in script and "Ec2-Generated-Passw0rd" not in script
    assert "169.254.169.254/latest/api/token" in scripts[0]
    assert "[Console]::In.ReadLine()" in scripts[1] and "-Name 'tester'" in scripts[1]
    assert commands[1].secret == "Ec2-Generated-Passw0rd"
    assert "$env:ACTIONS_RUNNER_INPUT_TOKEN = $token" in scripts[2]
    assert "--runasservice" in scripts[2] and commands[2] is not None
    assert commands[2].secret == TOKEN
    assert "awaiting-secrets" in scripts[3]


def test_the_windows_password_is_read_from_ec2_and_decrypted_with_the_host_key(
    key: KeyPair,
) -> None:
    private = load_pem_private_key(key.private_pem.encode(), password=None)
    encrypted = private.public_key().encrypt(  # type: ignore[union-attr]
        b"Ec2-Generated-Passw0rd", padding.PKCS1v15()
    )
    client = boto3.client("ec2", region_name="eu-west-1")
    stub = Stubber(client)
    answer = {"InstanceId": INSTANCE, "PasswordData": ""}
    stub.add_response("get_password_data", answer, {"InstanceId": INSTANCE})  # not yet
    ready = {**answer, "PasswordData": "\r\n" + base64.b64encode(encrypted).decode() + "\r\n"}
    stub.add_response("get_password_data", ready, {"InstanceId": INSTANCE})  # the waiter
    stub.add_response("get_password_data", ready, {"InstanceId": INSTANCE})
    session = type("Session", (), {"client": lambda self, *a, **k: client})()
    with stub:
        password = fetch_windows_password(
            session,  # type: ignore[arg-type]
            "eu-west-1", INSTANCE, key.private_pem, timeout=5, poll_interval=0,
        )  # fmt: skip
    assert password == "Ec2-Generated-Passw0rd"
    stub.assert_no_pending_responses()


def test_a_windows_password_that_never_comes_says_so(key: KeyPair) -> None:
    client = boto3.client("ec2", region_name="eu-west-1")
    stub = Stubber(client)
    for _ in range(3):
        stub.add_response("get_password_data", {"InstanceId": INSTANCE, "PasswordData": ""})
    session = type("Session", (), {"client": lambda self, *a, **k: client})()
    with (
        stub,
        pytest.raises(OperationError, match=f"EC2 had no password for Windows instance {INSTANCE}"),
    ):
        fetch_windows_password(
            session,  # type: ignore[arg-type]
            "eu-west-1", INSTANCE, key.private_pem, timeout=3, poll_interval=1,
        )  # fmt: skip


def test_the_stand_in_catches_a_secret_in_a_command_line(host: Host, key: KeyPair) -> None:
    """The argv check can fail: a token passed as an argument is seen."""
    from mapt.targets import RemoteCommand, remote_session

    script = f"cd {host.runner_dir} && ./config.sh --token {TOKEN}"
    with remote_session(access(host, key)) as run:
        run(
            RemoteCommand(
                "leaking on purpose", f"ACTIONS_RUNNER_INPUT_TOKEN={TOKEN} bash -c '{script}'"
            )
        )
    assert any(line.endswith(" argv-leak") for line in host.recorded())
    assert json.loads((host.runner_dir / ".runner").read_text())["agentId"] == 31337
