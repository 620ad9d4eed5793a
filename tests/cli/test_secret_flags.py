"""Secret flags (runner token, RHEL password): from a file, stdin or the environment.

A value on the command line is readable by every user of the machine in
``/proc/<pid>/cmdline`` for the whole run; the ``-file`` forms keep it out of there.
In-process tests stop ``create`` where the flow would start, once every check has
passed, and look at the request it was handed; the process-list test runs the real
``mapt`` command.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mapt.core import OperationError
from tests.cli.host_harness import Harness

TOKEN = "AREGISTRATIONTOKEN7QXJ2KBWZPM4"
PASSWORD = "s3cret-Sub-Pass"
RUNNER = ("--ghactions-runner-repo", "acme/app")
STOPPED = "stopped before the flow, for the test"
SECRET_VARIABLES = (
    "MAPT_GHACTIONS_RUNNER_TOKEN",
    "MAPT_GHACTIONS_RUNNER_TOKEN_FILE",
    "MAPT_RH_SUBSCRIPTION_PASSWORD",
    "MAPT_RH_SUBSCRIPTION_PASSWORD_FILE",
)


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The host requests ``create`` hands to the flow (which then stops)."""
    import mapt.hosts._target as flow

    requests: list[Any] = []

    def create_host(context: Any, args: Any, request: Any, **kwargs: Any) -> Any:
        requests.append(request)
        raise OperationError(STOPPED)

    monkeypatch.setattr(flow, "create_host", create_host)
    for name in ("GITHUB_TOKEN", "GH_TOKEN", *SECRET_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    # create checks that credentials exist before its flow; nothing here calls AWS.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return requests


def reached_the_flow(result: Any) -> bool:
    return result.exit_code == 1 and STOPPED in result.stderr


def warnings(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if "WARNING" in line]


def secret_file(tmp_path: Path, text: str, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_runner_token_from_a_file(cli: Harness, handed: list[Any], tmp_path: Path) -> None:
    path = secret_file(tmp_path, TOKEN + "\n")
    result = cli.create(*RUNNER, "--ghactions-runner-token-file", str(path))
    assert reached_the_flow(result), result.stderr
    assert handed[0].runner.token == TOKEN
    assert warnings(result) == [] and TOKEN not in result.output


def test_runner_token_from_stdin(cli: Harness, handed: list[Any]) -> None:
    result = cli.create(*RUNNER, "--ghactions-runner-token-file", "-", input=TOKEN + "\r\n")
    assert reached_the_flow(result), result.stderr
    assert handed[0].runner.token == TOKEN
    assert warnings(result) == []


def test_runner_token_from_the_environment_does_not_warn(cli: Harness, handed: list[Any]) -> None:
    result = cli.create(*RUNNER, env={"MAPT_GHACTIONS_RUNNER_TOKEN": TOKEN})
    assert reached_the_flow(result), result.stderr
    assert handed[0].runner.token == TOKEN and warnings(result) == []


def test_literal_runner_token_works_but_warns_once(cli: Harness, handed: list[Any]) -> None:
    result = cli.create(*RUNNER, "--ghactions-runner-token", TOKEN)
    assert reached_the_flow(result), result.stderr
    assert handed[0].runner.token == TOKEN
    (warning,) = warnings(result)
    assert "--ghactions-runner-token on the command line is visible to other users" in warning
    assert "MAPT_GHACTIONS_RUNNER_TOKEN" in warning
    assert "--ghactions-runner-token-file" in warning
    assert TOKEN not in result.output


def test_rh_subscription_password_from_a_file(
    cli: Harness, handed: list[Any], tmp_path: Path
) -> None:
    path = secret_file(tmp_path, PASSWORD + "\n")
    result = cli.create(
        "--os", "rhel", "--rh-subscription-username", "ci-bot",
        "--rh-subscription-password-file", str(path),
    )  # fmt: skip
    assert reached_the_flow(result), result.stderr
    assert handed[0].rh_subscription_password == PASSWORD
    assert warnings(result) == [] and PASSWORD not in result.output


def test_literal_rh_subscription_password_warns(cli: Harness, handed: list[Any]) -> None:
    result = cli.create(
        "--os", "rhel", "--rh-subscription-username", "ci-bot",
        "--rh-subscription-password", PASSWORD,
    )  # fmt: skip
    assert reached_the_flow(result), result.stderr
    assert handed[0].rh_subscription_password == PASSWORD
    (warning,) = warnings(result)
    assert "--rh-subscription-password on the command line is visible" in warning
    assert "MAPT_RH_SUBSCRIPTION_PASSWORD" in warning and PASSWORD not in result.output


# -- refused, exit 2, nothing handed on ----------------------------------------------------


def refused(result: Any, handed: list[Any]) -> str:
    """The one ``Error:`` line of a refused run (exit 2, no flow, no secret shown)."""
    assert result.exit_code == 2, result.output
    assert handed == []
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    assert TOKEN not in result.output and PASSWORD not in result.output
    return line


def test_literal_and_file_together_are_refused(
    cli: Harness, handed: list[Any], tmp_path: Path
) -> None:
    path = secret_file(tmp_path, TOKEN)
    line = refused(
        cli.create(*RUNNER, "--ghactions-runner-token", TOKEN,
                   "--ghactions-runner-token-file", str(path)),
        handed,
    )  # fmt: skip
    assert "--ghactions-runner-token and --ghactions-runner-token-file are both given" in line


def test_variable_and_file_together_are_refused(
    cli: Harness, handed: list[Any], tmp_path: Path
) -> None:
    path = secret_file(tmp_path, PASSWORD)
    line = refused(
        cli.create(
            "--os", "rhel", "--rh-subscription-username", "ci-bot",
            "--rh-subscription-password-file", str(path),
            env={"MAPT_RH_SUBSCRIPTION_PASSWORD": PASSWORD},
        ),
        handed,
    )  # fmt: skip
    assert "MAPT_RH_SUBSCRIPTION_PASSWORD and --rh-subscription-password-file" in line


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing", None, "cannot be read: No such file or directory"),
        ("empty", "\n", "is empty"),
        ("folder", "", "cannot be read: Is a directory"),
        ("latin1", b"\xe9t\xe9", "is not UTF-8 text"),
    ],
)
def test_unusable_secret_file_is_refused_naming_flag_and_path(
    cli: Harness, handed: list[Any], tmp_path: Path, name: str, content: Any, problem: str
) -> None:
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    line = refused(cli.create(*RUNNER, "--ghactions-runner-token-file", str(path)), handed)
    assert line == f"Error: --ghactions-runner-token-file {str(path)!r} {problem}"


def test_two_secrets_cannot_both_read_stdin(cli: Harness, handed: list[Any]) -> None:
    line = refused(
        cli.create(
            "--os", "rhel", "--rh-subscription-username", "ci-bot",
            "--rh-subscription-password-file", "-", *RUNNER,
            "--ghactions-runner-token-file", "-",
        ),
        handed,
    )  # fmt: skip
    assert "both read standard input" in line


def test_token_file_without_a_runner_is_refused(
    cli: Harness, handed: list[Any], tmp_path: Path
) -> None:
    path = secret_file(tmp_path, TOKEN)
    line = refused(cli.create("--ghactions-runner-token-file", str(path)), handed)
    assert "--ghactions-runner-token-file" in line and "applies only with" in line


# -- the process list of a real mapt run ------------------------------------------------------


def _open_writer(fifo: Path, process: subprocess.Popen[bytes], timeout: float) -> int:
    """Open ``fifo`` for writing once ``process`` has opened it for reading."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"mapt ended ({process.returncode}) without reading the token: {stderr!r}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("mapt never opened the token file")
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_process_list_holds_no_token_given_by_file(tmp_path: Path) -> None:
    """While mapt waits for the token (a FIFO), its /proc cmdline is read from outside."""
    fifo = tmp_path / "token"
    os.mkfifo(fifo, 0o600)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MAPT_", "GITHUB_", "GH_", "AWS_", "PULUMI_CONFIG"))
    }
    env.update(
        MAPT_STATE_DIR=str(tmp_path / "state"),
        # An endpoint nobody answers: the first AWS call, after the token is taken,
        # fails at once.
        AWS_REGION="us-east-1", AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_ENDPOINT_URL="http://127.0.0.1:1", AWS_MAX_ATTEMPTS="1",
    )  # fmt: skip
    command = [
        sys.executable, "-m", "mapt", "aws", "host", "create", "--os", "fedora",
        "--project-name", "demo", *RUNNER, "--ghactions-runner-token-file", str(fifo),
        "--dry-run",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    try:
        writer = _open_writer(fifo, process, timeout=60)
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        with os.fdopen(writer, "w") as handle:
            handle.write(TOKEN + "\n")
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert b"--ghactions-runner-token-file" in cmdline and str(fifo).encode() in cmdline
    assert not any(TOKEN.encode() in argument for argument in cmdline)
    text = stderr.decode()
    # The token was taken: the run went past the runner checks (without a token they
    # end it with exit 2, "needs GitHub credentials") to its first AWS call.
    assert process.returncode not in (0, 2), text
    assert "needs GitHub credentials" not in text and "could not be reached" in text
    assert TOKEN not in text and "WARNING" not in text
