"""The runner scripts: what they install and register, and that hostile values cannot get in.

The Linux scripts are also run for real by bash, with ``curl``, ``runuser`` and ``chown``
replaced by recorders and a fake runner release whose ``config.sh``/``svc.sh`` record
their arguments: that proves the quoting, not just the text, and that the token
reaches ``config.sh`` from standard input through its environment only.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from mapt.core import InputError, configure_logging, get_logger, redact
from mapt.integrations.github import (
    DEFAULT_RUNNER_VERSION,
    GitHubClient,
    RunnerScope,
    RunnerSpec,
    TokenAuth,
    linux_runner_configure_script,
    linux_runner_script,
    runner_arch,
    runner_id_from_output,
    windows_runner_configure_script,
    windows_runner_script,
)
from tests.integrations.fake_github import REGISTRATION_TOKEN, FakeGitHub, FakeGitHubServer

TOKEN = "AXJ7RUNNERREGISTRATIONTOKEN42"
REPO = RunnerScope.for_repo("octo/widget")
ORG = RunnerScope.for_org("octo-org")


def spec(**changes: object) -> RunnerSpec:
    values: dict[str, object] = {
        "scope": REPO,
        "token": TOKEN,
        "name": "mapt-demo",
        "labels": ("mapt-123", "gpu"),
        "ephemeral": True,
    }
    values.update(changes)
    return RunnerSpec(**values)  # type: ignore[arg-type]


# -- what the scripts register --------------------------------------------------------


def test_linux_scripts_install_at_boot_and_register_as_asked() -> None:
    script = linux_runner_script(spec(), "x86_64", run_as="ec2-user")
    assert script.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in script
    assert (
        "curl -fsSL --retry 5 --retry-delay 5 --retry-connrefused -o "
        f"actions-runner-linux-x64-{DEFAULT_RUNNER_VERSION}.tar.gz \\\n"
        f"  https://github.com/actions/runner/releases/download/v{DEFAULT_RUNNER_VERSION}/"
        f"actions-runner-linux-x64-{DEFAULT_RUNNER_VERSION}.tar.gz\n"
    ) in script
    assert "runner_dir=/opt/actions-runner\n" in script
    assert "runner_user=ec2-user\n" in script
    # The boot script only installs: no registration, no token.
    assert "./config.sh" not in script and "--url" not in script and TOKEN not in script
    configure = linux_runner_configure_script(spec(), run_as="ec2-user")
    assert "cd /opt/actions-runner\n" in configure
    assert (
        'ACTIONS_RUNNER_INPUT_TOKEN="$token" runuser -u "$runner_user" -- ./config.sh '
        "--unattended --url https://github.com/octo/widget --name mapt-demo "
        "--labels mapt-123,gpu --replace --ephemeral\n"
    ) in configure
    assert '  ./svc.sh install "$runner_user"\n  ./svc.sh start\n' in configure
    assert TOKEN not in configure  # it is read from standard input


def test_organization_runner_url_and_no_ephemeral_or_labels() -> None:
    script = linux_runner_configure_script(
        spec(scope=ORG, ephemeral=False, labels=()), run_as="u"
    )
    assert "--url https://github.com/octo-org --name" in script
    assert "--ephemeral" not in script
    assert "--labels" not in script
    assert script.count("--replace") == 1


@pytest.mark.parametrize(("arch", "runner"), [("x86_64", "x64"), ("arm64", "arm64")])
def test_the_download_follows_the_architecture(arch: str, runner: str) -> None:
    script = linux_runner_script(spec(), arch, run_as="fedora")
    archive = f"actions-runner-linux-{runner}-{DEFAULT_RUNNER_VERSION}.tar.gz"
    assert f"/v{DEFAULT_RUNNER_VERSION}/{archive}\n" in script
    # The pinned release's archive is checked against its published SHA-256.
    assert f"  {archive}' | sha256sum --check --quiet - ||" in script
    assert runner_arch(arch) == runner


@pytest.mark.parametrize("arch", ["aarch64", "amd64", "s390x", "", "X86_64"])
def test_other_architectures_are_refused(arch: str) -> None:
    with pytest.raises(InputError, match=f"--arch {arch!r} has no GitHub Actions runner"):
        linux_runner_script(spec(), arch, run_as="ec2-user")


def test_a_version_override_changes_the_download_and_drops_the_pinned_checksum() -> None:
    script = linux_runner_script(spec(version="2.340.1"), "arm64", run_as="ec2-user")
    assert (
        "https://github.com/actions/runner/releases/download/v2.340.1/"
        "actions-runner-linux-arm64-2.340.1.tar.gz"
    ) in script
    assert DEFAULT_RUNNER_VERSION not in script
    assert "sha256sum" not in script


def test_github_enterprise_server_url_from_the_environment() -> None:
    env = {"GITHUB_SERVER_URL": "https://ghe.example.com:8443/"}
    ghe = RunnerSpec.from_environment(REPO, TOKEN, "mapt-demo", ("a",), False, env=env)
    assert ghe.server_url == "https://ghe.example.com:8443"
    assert ghe.url == "https://ghe.example.com:8443/octo/widget"
    assert "--url https://ghe.example.com:8443/octo/widget " in linux_runner_configure_script(
        ghe, run_as="ec2-user"
    )
    assert RunnerSpec.from_environment(ORG, TOKEN, "mapt-demo", env={}).url == (
        "https://github.com/octo-org"
    )
    # An Enterprise Server may need an older runner; github.com refuses those.
    assert RunnerSpec.from_environment(REPO, TOKEN, "x", version="2.320.0", env=env)
    with pytest.raises(InputError, match=r"older than 2\.329\.0"):
        spec(version="2.320.0")


def test_labels_are_kept_in_order_without_duplicates() -> None:
    assert spec(labels=("b", "a", "B", "b", "c.1_x-y")).labels == ("b", "a", "c.1_x-y")
    assert spec(labels=["x", "y"]).labels == ("x", "y")  # a list from the CLI is fine


def test_windows_scripts_install_at_boot_and_register_a_service() -> None:
    script = windows_runner_script(spec())
    archive = f"actions-runner-win-x64-{DEFAULT_RUNNER_VERSION}.zip"
    assert f"$archive = Join-Path $runnerDir '{archive}'" in script
    assert (
        f"-Uri 'https://github.com/actions/runner/releases/download/v{DEFAULT_RUNNER_VERSION}/"
        f"{archive}'"
    ) in script
    assert "Get-FileHash -LiteralPath $archive -Algorithm SHA256" in script
    assert "$runnerDir = 'C:\\actions-runner'" in script
    assert "& .\\config.cmd" not in script and "--url" not in script and TOKEN not in script
    configure = windows_runner_configure_script(spec())
    # Windows answers SSH before its first-boot script ends: wait for the install.
    assert "Join-Path $runnerDir '.mapt-installed'" in script
    assert "Test-Path -LiteralPath 'C:\\actions-runner\\.mapt-installed'" in configure
    assert configure.index(".mapt-installed") < configure.index("ReadLine")
    assert "Set-Location -LiteralPath 'C:\\actions-runner'" in configure
    assert "$token = [Console]::In.ReadLine()" in configure
    assert "$env:ACTIONS_RUNNER_INPUT_TOKEN = $token" in configure
    assert (
        "& .\\config.cmd '--unattended' '--url' 'https://github.com/octo/widget' "
        "'--name' 'mapt-demo' '--labels' 'mapt-123,gpu' '--replace' '--ephemeral' "
        "'--runasservice'\n"
    ) in configure
    assert "Remove-Item -Path Env:ACTIONS_RUNNER_INPUT_TOKEN" in configure
    assert "$configExit = $LASTEXITCODE" in configure
    assert 'if ($configExit -ne 0) { throw "mapt: config.cmd failed' in configure
    assert 'Write-Output "mapt-runner-id=$runnerId"' in configure
    assert TOKEN not in configure
    plain = windows_runner_configure_script(spec(ephemeral=False, scope=ORG))
    assert "'--ephemeral'" not in plain
    assert "'https://github.com/octo-org'" in plain
    older = windows_runner_script(spec(version="2.340.0"))
    assert "actions-runner-win-x64-2.340.0.zip" in older and "Get-FileHash" not in older


# -- hostile values ---------------------------------------------------------------------


HOSTILE = ["a b", "a,b", "x;reboot", "$(id)", "`id`", "a'b", 'a"b', "", "a\nb", "é", "a&b", "-"]


@pytest.mark.parametrize("label", HOSTILE[:-1])  # "-" is a valid label
def test_hostile_labels_are_refused(label: str) -> None:
    with pytest.raises(InputError) as caught:
        spec(labels=("ok", label))
    assert str(caught.value).startswith(
        f"--ghactions-runner-labels item {label!r} is not a valid runner label"
    )


@pytest.mark.parametrize("name", [*HOSTILE, "-x", ".x", "n" * 65])
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match=r"^runner name .* is not valid"):
        spec(name=name)


@pytest.mark.parametrize("version", [*HOSTILE, "2.337", "v2.337.0", "latest", "2.337.0;id"])
def test_hostile_versions_are_refused(version: str) -> None:
    with pytest.raises(InputError, match=r"^runner version .* is not a release number"):
        spec(version=version)


@pytest.mark.parametrize("token", [*HOSTILE[:-1], "ABC DEF", "ABC'DEF"])
def test_hostile_tokens_are_refused_without_being_shown(token: str) -> None:
    with pytest.raises(InputError) as caught:
        spec(token=token)
    assert str(caught.value) == (
        "the runner registration token is empty or has characters a GitHub token never has"
    )


@pytest.mark.parametrize("user", ["root;id", "Ec2-User", "a b", "", "$(id)", "x" * 33])
def test_hostile_run_as_users_are_refused(user: str) -> None:
    with pytest.raises(InputError, match=r"^runner user .* is not a Linux user name"):
        linux_runner_script(spec(), "x86_64", run_as=user)


def test_hostile_install_dirs_are_refused() -> None:
    with pytest.raises(InputError, match="is not a plain absolute path"):
        linux_runner_script(spec(), "x86_64", run_as="u", install_dir="/opt/x y")
    with pytest.raises(InputError, match="is not a plain Windows path"):
        windows_runner_script(spec(), install_dir="C:\\a'b")


def test_hostile_server_urls_are_refused() -> None:
    with pytest.raises(InputError, match="is not the http"):
        spec(server_url="https://ghe.example.com/';Remove-Item")


# -- the token stays out of logs ----------------------------------------------------------


def test_no_script_holds_the_token_or_traces() -> None:
    for script in (
        linux_runner_script(spec(), "x86_64", run_as="ec2-user"),
        windows_runner_script(spec()),
        linux_runner_configure_script(spec(), run_as="ec2-user"),
        windows_runner_configure_script(spec()),
    ):
        assert TOKEN not in script
        code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
        assert not any("set -x" in line or "xtrace" in line for line in code)
        assert not any("$token" in line and "echo" in line for line in code)


def test_the_specs_repr_and_str_hold_no_token() -> None:
    # A spec in a log line, a traceback's locals or an f-string shows the rest of it.
    runner = spec()
    for shown in (repr(runner), str(runner), f"{runner}"):
        assert TOKEN not in shown
        assert "token=" not in shown and "mapt-demo" in shown


def test_the_runner_id_is_read_from_the_last_marker_line() -> None:
    assert runner_id_from_output("noise\nmapt-runner-id=12\r\nmapt-runner-id=345\n") == 345
    assert runner_id_from_output("mapt-runner-id=\n") is None
    assert runner_id_from_output("") is None


def test_no_log_record_of_a_whole_flow_shows_a_token(
    mapt_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pat = "ghp_flowTokenNeverLogged0123456789"
    fake = FakeGitHub()
    fake.tokens.add(pat)
    fake.add_scope("/repos/octo/widget", ["mapt-demo"])
    configure_logging(debug=True)
    logging.getLogger("mapt").propagate = True  # configure_logging turned it off
    server = FakeGitHubServer(fake)
    with server, GitHubClient(TokenAuth(pat), api_url=server.api_url) as api:
        token = api.registration_token(REPO)
        runner = RunnerSpec(REPO, token, "mapt-demo", ("gpu",), ephemeral=False)
        linux_runner_script(runner, "x86_64", run_as="ec2-user")
        windows_runner_script(runner)
        get_logger(__name__).debug("spec: %r", runner)  # even a careless repr
        assert api.remove_runner(REPO, "mapt-demo")

    records = [r.getMessage() for r in mapt_logs.records]
    assert any("registration token for repository octo/widget" in m for m in records)
    assert any("removed runner mapt-demo" in m for m in records)
    for message in records:
        assert pat not in message and REGISTRATION_TOKEN not in message
        assert redact(message) == message  # nothing left for redaction to catch
    stderr = capsys.readouterr().err  # what a CI log shows, through mapt's handler
    assert "removed runner mapt-demo" in stderr
    assert pat not in stderr and REGISTRATION_TOKEN not in stderr


# -- running the Linux script for real ------------------------------------------------------


@dataclass
class Sandbox:
    bin: Path
    log: Path
    release: Path
    install_dir: Path

    def run(self, script: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        path = self.bin.parent / "bootstrap.sh"
        path.write_text(script)
        env = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "MAPT_TEST_LOG": str(self.log),
            "MAPT_TEST_RELEASE": str(self.release),
        }
        return subprocess.run(
            ["bash", str(path)], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """Recorders for curl/runuser/chown, and a fake runner release to download."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(
        bin_dir / "curl",
        '#!/bin/bash\nout=""\nwhile [ $# -gt 1 ]; do\n'
        '  if [ "$1" = -o ]; then out=$2; shift; fi\n  shift\ndone\n'
        'echo "curl $1 -> $out" >> "$MAPT_TEST_LOG"\ncp "$MAPT_TEST_RELEASE" "$out"\n',
    )
    _executable(
        bin_dir / "runuser",
        '#!/bin/bash\necho "runuser $1 $2 $3" >> "$MAPT_TEST_LOG"\nshift 3\nexec "$@"\n',
    )
    _executable(bin_dir / "chown", '#!/bin/bash\necho "chown $*" >> "$MAPT_TEST_LOG"\n')
    files = {
        "config.sh": '#!/bin/bash\nfor a in "$@"; do echo "config.sh arg: $a" >> '
        '"$MAPT_TEST_LOG"; done\n'
        'echo "config.sh env: $ACTIONS_RUNNER_INPUT_TOKEN" >> "$MAPT_TEST_LOG"\n'
        'printf \'{"agentId": 271, "agentName": "mapt-demo"}\' > .runner\n',
        "svc.sh": '#!/bin/bash\necho "svc.sh $*" >> "$MAPT_TEST_LOG"\n',
        "bin/installdependencies.sh": '#!/bin/bash\necho "installdependencies" >> '
        '"$MAPT_TEST_LOG"\n',
    }
    release = tmp_path / "release.tar.gz"
    with tarfile.open(release, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return Sandbox(bin_dir, tmp_path / "calls.log", release, tmp_path / "opt" / "actions-runner")


def test_the_linux_script_runs_and_passes_each_value_as_one_argument(sandbox: Sandbox) -> None:
    runner = spec(version="2.340.0", labels=("mapt-123", "gpu", "x.y_z"))
    script = linux_runner_script(
        runner, "x86_64", run_as="ec2-user", install_dir=str(sandbox.install_dir)
    )
    configure = linux_runner_configure_script(
        runner, run_as="ec2-user", install_dir=str(sandbox.install_dir)
    )

    result = sandbox.run(script)
    assert result.returncode == 0, result.stderr
    registered = sandbox.run(configure, stdin=TOKEN + "\n")
    assert registered.returncode == 0, registered.stderr

    archive = "actions-runner-linux-x64-2.340.0.tar.gz"
    assert sandbox.calls() == [
        f"curl https://github.com/actions/runner/releases/download/v2.340.0/{archive} -> {archive}",
        "installdependencies",
        f"chown -R ec2-user: {sandbox.install_dir}",
        "runuser -u ec2-user --",
        "config.sh arg: --unattended",
        "config.sh arg: --url",
        "config.sh arg: https://github.com/octo/widget",
        "config.sh arg: --name",
        "config.sh arg: mapt-demo",
        "config.sh arg: --labels",
        "config.sh arg: mapt-123,gpu,x.y_z",
        "config.sh arg: --replace",
        "config.sh arg: --ephemeral",
        f"config.sh env: {TOKEN}",  # from standard input, through the environment only
        "svc.sh install ec2-user",
        "svc.sh start",
    ]
    assert (sandbox.install_dir / "config.sh").is_file()
    assert not (sandbox.install_dir / archive).exists()  # the archive is removed
    assert runner_id_from_output(registered.stdout) == 271
    # What a log would show: the scripts' own output never holds the token.
    for run in (result, registered):
        assert TOKEN not in run.stdout + run.stderr

    again = sandbox.run(script)  # a second boot run downloads nothing
    assert again.returncode == 0 and "already installed" in again.stderr
    twice = sandbox.run(configure, stdin=TOKEN + "\n")  # a re-run registers nothing
    assert twice.returncode == 0 and "already configured" in twice.stderr
    assert runner_id_from_output(twice.stdout) == 271
    assert sum(line.startswith("config.sh env:") for line in sandbox.calls()) == 1
    assert sum(line.startswith("curl ") for line in sandbox.calls()) == 1


def test_the_configure_script_refuses_to_run_without_a_token(sandbox: Sandbox) -> None:
    sandbox.install_dir.mkdir(parents=True)
    configure = linux_runner_configure_script(
        spec(), run_as="ec2-user", install_dir=str(sandbox.install_dir)
    )
    result = sandbox.run(configure, stdin="")
    assert result.returncode == 1
    assert "mapt: no registration token on standard input" in result.stderr
    assert sandbox.calls() == []


def test_the_linux_script_stops_when_the_pinned_archive_checksum_differs(
    sandbox: Sandbox,
) -> None:
    script = linux_runner_script(
        spec(), "arm64", run_as="ec2-user", install_dir=str(sandbox.install_dir)
    )
    result = sandbox.run(script)
    assert result.returncode != 0
    assert "mapt: actions-runner-linux-arm64-2.337.0.tar.gz does not have the expected SHA-256" in (
        result.stderr
    )
    calls = sandbox.calls()
    assert calls[0].startswith("curl https://github.com/actions/runner/releases/download/")
    assert not any(line.startswith(("config.sh", "svc.sh", "runuser")) for line in calls)
    assert TOKEN not in result.stdout + result.stderr
