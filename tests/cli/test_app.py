from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from mapt import __version__
from mapt.cli import app
from mapt.cli._aws import aws_app
from mapt.core import InputError, StateLockedError

runner = CliRunner()


def test_help_lists_the_aws_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "aws" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"mapt {__version__}"


def test_aws_help() -> None:
    result = runner.invoke(app, ["aws", "--help"])
    assert result.exit_code == 0
    assert "Usage: mapt aws" in result.output


def test_unknown_option_is_one_line_on_stderr_with_exit_2() -> None:
    result = runner.invoke(app, ["--bogus"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: No such option: --bogus. Try 'mapt --help'."
    ]


HEAVY_MODULES = (
    "pulumi",
    "pulumi_aws",
    "boto3",
    "botocore",
    # mapt serve's stack: loaded only when the server or a token command runs.
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    # (pydantic is not listed: Typer itself loads it to build a subcommand's parameters.)
    # mapt.client's HTTP stack: loaded only when a command is sent to a --server.
    "httpx",
    "httpcore",
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["aws", "--help"],
        ["aws", "host", "create", "--help"],
        ["serve", "--help"],
        ["serve", "token", "--help"],
        ["execution", "--help"],
        ["execution", "logs", "--help"],
    ],
)
def test_help_does_not_import_heavy_modules(argv: list[str]) -> None:
    probe = (
        "import sys\n"
        "from mapt.cli import main\n"
        f"sys.argv = ['mapt', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


@pytest.fixture
def failing_command() -> object:
    """A throwaway command on the aws group that raises the error it is given."""
    errors = {
        "input": InputError("cpus '-1' must be a positive number"),
        "locked": StateLockedError("stack host-demo is locked by another run"),
    }

    @aws_app.command("raise-for-test", hidden=True)
    def _raise(kind: str) -> None:
        raise errors[kind]

    yield
    aws_app.registered_commands[:] = [
        c for c in aws_app.registered_commands if c.name != "raise-for-test"
    ]


@pytest.mark.usefixtures("failing_command")
@pytest.mark.parametrize(("kind", "code"), [("input", 2), ("locked", 3)])
def test_mapt_errors_become_one_line_and_their_exit_code(kind: str, code: int) -> None:
    result = runner.invoke(app, ["aws", "raise-for-test", kind])
    assert result.exit_code == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("failing_command")
def test_debug_adds_the_traceback() -> None:
    result = runner.invoke(app, ["--debug", "aws", "raise-for-test", "input"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: cpus '-1'")


def test_console_script_entry_point_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mapt", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"mapt {__version__}"
    assert isinstance(app, typer.Typer)
