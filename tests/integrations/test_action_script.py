"""The composite action's mapt step, run by bash with a recording ``mapt`` in its place.

GitHub runs a composite ``run:`` with ``bash --noprofile --norc -eo pipefail`` and the
step's ``env:`` evaluated; this does the same with the inputs a workflow would give,
so the flags mapt receives, the private key file and the outputs are checked for real.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integrations.test_action_schema import ACTION

ACTION_DATA = yaml.safe_load(ACTION.read_text())
MAPT_STEP = next(s for s in ACTION_DATA["runs"]["steps"] if s.get("id") == "mapt")
CONTEXT = {"github.repository": "octo/widget"}
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEfake\n-----END RSA PRIVATE KEY-----"

FAKE_MAPT = f"""#!{sys.executable}
import json, os, stat, sys
record = {{"args": sys.argv[1:], "env": {{k: v for k, v in os.environ.items()
          if k == "GITHUB_TOKEN" or k.startswith("MAPT_")}}}}
if "--ghactions-app-private-key" in sys.argv:
    key = sys.argv[sys.argv.index("--ghactions-app-private-key") + 1]
    record["key"] = {{"path": key, "text": open(key).read(),
                     "mode": stat.S_IMODE(os.stat(key).st_mode)}}
with open(os.path.join(os.environ["RUNNER_TEMP"], "calls.jsonl"), "a") as log:
    log.write(json.dumps(record) + "\\n")
if sys.argv[1:4] == ["aws", "host", "create"]:
    with open(os.environ["GITHUB_OUTPUT"], "a") as out:
        out.write("host=203.0.113.7\\nusername=ec2-user\\nregion=eu-north-1\\n")
"""


class Run:
    def __init__(self, result: subprocess.CompletedProcess[str], temp: Path, output: Path):
        self.result = result
        self.temp = temp
        self.output = output

    @property
    def calls(self) -> list[dict[str, Any]]:
        log = self.temp / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    @property
    def outputs(self) -> dict[str, str]:
        lines = self.output.read_text().splitlines() if self.output.exists() else []
        return dict(line.split("=", 1) for line in lines)


def evaluate(expression: str, inputs: dict[str, str]) -> str:
    """The few ``${{ }}`` forms action.yml uses: inputs and the github context."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("inputs."):
            key = name[len("inputs.") :]
            if key in inputs:
                return inputs[key]
            return evaluate(str(ACTION_DATA["inputs"][key].get("default", "")), inputs)
        return CONTEXT[name]

    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", value, expression)


@pytest.fixture
def run_step(tmp_path: Path) -> Any:
    temp = tmp_path / "runner-temp"
    (temp / "mapt-venv" / "bin").mkdir(parents=True)
    fake = temp / "mapt-venv" / "bin" / "mapt"
    fake.write_text(FAKE_MAPT)
    fake.chmod(0o755)

    def run(**inputs: str) -> Run:
        output = tmp_path / "github-output"
        env = {k: evaluate(str(v), inputs) for k, v in MAPT_STEP["env"].items()}
        env.update(PATH="/usr/bin:/bin", RUNNER_TEMP=str(temp), GITHUB_OUTPUT=str(output))
        script = tmp_path / "step.sh"
        script.write_text(MAPT_STEP["run"])
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        return Run(result, temp, output)

    return run


def test_create_with_a_github_app_passes_every_flag_and_a_private_key_file(run_step: Any) -> None:
    run = run_step(
        operation="create",
        **{
            "project-name": "gha-123",
            "backed-url": "s3://bucket/state",
            "runner-labels": "mapt-123,rhel",
            "runner-ephemeral": "true",
            "app-id": "42",
            "app-installation-id": "77",
            "app-private-key": PEM,
            "extra-args": "--cpus 4  --memory 16",
        },
    )
    assert run.result.returncode == 0, run.result.stderr
    [call] = run.calls
    conn_dir = str(run.temp / "mapt-gha-123")
    key = call["key"]
    assert call["args"] == [
        "aws", "host", "create", "--os", "rhel", "--project-name", "gha-123",
        "--conn-details-output", conn_dir, "--output", "json",
        "--backed-url", "s3://bucket/state", "--spot", "--timeout", "2h",
        "--ghactions-runner-repo", "octo/widget",
        "--ghactions-runner-labels", "mapt-123,rhel", "--ghactions-runner-ephemeral",
        "--ghactions-app-id", "42", "--ghactions-app-installation-id", "77",
        "--ghactions-app-private-key", key["path"],
        "--cpus", "4", "--memory", "16",
    ]  # fmt: skip
    assert key["text"] == PEM + "\n"
    assert key["mode"] == 0o600
    assert not Path(key["path"]).exists()  # removed when the step ended
    assert call["env"]["GITHUB_TOKEN"] == ""
    assert run.outputs == {
        "host": "203.0.113.7",
        "username": "ec2-user",
        "region": "eu-north-1",
        "runner-name": "mapt-gha-123",
    }
    assert PEM not in run.result.stdout + run.result.stderr


def test_create_for_an_organization_with_a_token_on_demand_without_ttl(run_step: Any) -> None:
    run = run_step(
        operation="create",
        os="fedora",
        spot="false",
        timeout="",
        **{"project-name": "p1", "runner-org": "octo-org", "github-token": "ghp_x"},
    )
    assert run.result.returncode == 0, run.result.stderr
    [call] = run.calls
    args = call["args"]
    assert args[args.index("--os") + 1] == "fedora"
    assert "--spot" not in args and "--timeout" not in args and "--backed-url" not in args
    assert args[-2:] == ["--ghactions-runner-org", "octo-org"]
    assert "--ghactions-runner-repo" not in args and "--ghactions-app-id" not in args
    assert call["env"]["GITHUB_TOKEN"] == "ghp_x"


def test_create_without_a_runner(run_step: Any) -> None:
    run = run_step(operation="create", **{"project-name": "plain", "runner-repo": ""})
    assert run.result.returncode == 0, run.result.stderr
    [call] = run.calls
    assert not any(arg.startswith("--ghactions") for arg in call["args"])
    assert "runner-name" not in run.outputs


def test_destroy_hands_the_app_to_mapt_through_its_environment(run_step: Any) -> None:
    run = run_step(
        operation="destroy",
        **{
            "project-name": "gha-123",
            "backed-url": "s3://bucket/state",
            "app-id": "42",
            "app-installation-id": "77",
            "app-private-key": PEM,
            "github-token": "ghp_y",
        },
    )
    assert run.result.returncode == 0, run.result.stderr
    [call] = run.calls
    assert call["args"] == [
        "aws", "host", "destroy", "--project-name", "gha-123", "--backed-url", "s3://bucket/state",
    ]  # fmt: skip
    env = call["env"]
    assert env["MAPT_GHACTIONS_APP_ID"] == "42"
    assert env["MAPT_GHACTIONS_APP_INSTALLATION_ID"] == "77"
    assert env["MAPT_GHACTIONS_APP_PRIVATE_KEY"].startswith(str(run.temp / "mapt-app-key."))
    assert not Path(env["MAPT_GHACTIONS_APP_PRIVATE_KEY"]).exists()
    assert env["GITHUB_TOKEN"] == "ghp_y"
    assert env["MAPT_GHACTIONS_RUNNER_REPO"] == "octo/widget"  # the input's default
    assert "MAPT_GHACTIONS_RUNNER_ORG" not in env


def test_lease_and_release_talk_to_the_server_with_the_token_in_the_environment(
    run_step: Any,
) -> None:
    token = "mapt_" + "k" * 20
    lease = run_step(
        operation="lease",
        **{"project-name": "unused", "server": "https://mapt.example", "token": token,
           "pool": "fedora-ci", "lease-ttl": "45m", "lease-wait": "30",
           "allow-cold-start": "true"},
    )  # fmt: skip
    assert lease.result.returncode == 0, lease.result.stderr
    [call] = lease.calls
    assert call["args"] == [
        "pool", "lease", "fedora-ci", "--server", "https://mapt.example", "--ttl", "45m",
        "--wait-seconds", "30", "--conn-details-output", str(lease.temp / "mapt-pool-fedora-ci"),
        "--allow-cold-start",
    ]  # fmt: skip
    assert call["env"]["MAPT_TOKEN"] == token
    assert token not in " ".join(call["args"])
    release = run_step(
        operation="release",
        **{"project-name": "unused", "server": "https://mapt.example", "token": token,
           "pool": "fedora-ci", "lease-id": "lease-0123"},
    )  # fmt: skip
    assert release.result.returncode == 0, release.result.stderr
    assert release.calls[-1]["args"] == [
        "pool", "release", "fedora-ci", "lease-0123", "--server", "https://mapt.example",
    ]  # fmt: skip


def test_extra_args_on_several_lines_are_all_passed(run_step: Any, tmp_path: Path) -> None:
    # A workflow's "extra-args: |" block: every line's flags, none dropped, none globbed.
    (tmp_path / "matched").write_text("")
    extra = "--cpus 4\n--memory 16\t--arch arm64\n\n--tags m*\n"
    run = run_step(operation="create", **{"project-name": "p", "extra-args": extra})
    assert run.result.returncode == 0, run.result.stderr
    args = run.calls[0]["args"]
    assert args[args.index("--cpus") :] == [
        "--cpus", "4", "--memory", "16", "--arch", "arm64", "--tags", "m*",
    ]  # fmt: skip


def test_inputs_cannot_inject_shell_code(run_step: Any, tmp_path: Path) -> None:
    hostile = "x$(touch pwned)`touch pwned2`;touch pwned3"
    run = run_step(operation="create", **{"project-name": hostile, "runner-labels": hostile})
    assert run.result.returncode == 0, run.result.stderr
    args = run.calls[0]["args"]
    assert args[args.index("--project-name") + 1] == hostile
    assert args[args.index("--ghactions-runner-labels") + 1] == hostile
    assert not list(tmp_path.glob("pwned*"))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"operation": "update"}, "operation must be create, destroy, lease or release"),
        ({"operation": "lease", "pool": "ci"}, "lease needs the server and pool inputs"),
        (
            {"operation": "release", "pool": "ci", "server": "http://127.0.0.1:8080"},
            "release needs the lease-id input",
        ),
        (
            {"operation": "lease", "pool": "ci", "server": "http://x", "allow-cold-start": "y"},
            "allow-cold-start must be true or false",
        ),
        ({"operation": "create", "spot": "yes"}, "spot must be true or false"),
        (
            {"operation": "create", "runner-ephemeral": "1"},
            "runner-ephemeral must be true or false",
        ),
    ],
)
def test_bad_inputs_stop_before_mapt_runs(
    run_step: Any, inputs: dict[str, str], message: str
) -> None:
    run = run_step(**{"project-name": "p", **inputs})
    assert run.result.returncode == 2
    assert f"mapt action: {message}" in run.result.stderr
    assert run.calls == []


@pytest.mark.parametrize("operation", ["create", "destroy"])
def test_secrets_reach_mapt_through_its_environment_never_its_arguments(
    run_step: Any, operation: str
) -> None:
    """Arguments are in /proc/<pid>/cmdline, readable by every user of the runner."""
    password, token = "Rh-Pass-8f2e1c", "ghp_" + "s" * 36
    run = run_step(
        operation=operation,
        **{
            "project-name": "gha-9",
            "github-token": token,
            "app-id": "42",
            "app-installation-id": "77",
            "app-private-key": PEM,
            "rh-subscription-username": "ci-bot",
            "rh-subscription-password": password,
        },
    )
    assert run.result.returncode == 0, run.result.stderr
    [call] = run.calls
    for secret in (password, token, PEM, "MIIEfake"):
        assert not any(secret in argument for argument in call["args"]), secret
    assert call["env"]["GITHUB_TOKEN"] == token
    assert call["env"]["MAPT_RH_SUBSCRIPTION_USERNAME"] == "ci-bot"
    assert call["env"]["MAPT_RH_SUBSCRIPTION_PASSWORD"] == password
    assert password not in run.result.stdout + run.result.stderr
