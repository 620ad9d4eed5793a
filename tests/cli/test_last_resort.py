"""What no layer translated still ends as one ``Error:`` line with its exit code."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError
from typer.testing import CliRunner

from mapt.cli import app
from mapt.cli._services import Services


def destroy_with_failing_engine(tmp_path: Path, error: Exception) -> object:
    def engine(secrets_provider: str | None, debug: bool) -> object:
        raise error

    return CliRunner().invoke(
        app,
        ["aws", "host", "destroy", "--project-name", "demo",
         "--backed-url", f"file://{tmp_path / 'state'}"],
        obj=Services(engine=engine),  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("error", "exit_code", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/state/.mapt/locks/demo.json"),
         1, ["No space left on device", "/state/.mapt/locks/demo.json", "ENOSPC"]),
        (PermissionError(errno.EACCES, "Permission denied", "/state/.pulumi"),
         1, ["Permission denied", "/state/.pulumi"]),
        (OSError(errno.EROFS, "Read-only file system", "/state"), 1, ["Read-only file system"]),
        (EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com/"),
         1, ["could not be reached at https://s3.eu-west-1.amazonaws.com/"]),
        (NoCredentialsError(), 5, ["no usable AWS credentials", "AWS_PROFILE"]),
    ],
)  # fmt: skip
def test_untranslated_failures_are_one_line_with_their_exit_code(
    tmp_path: Path, error: Exception, exit_code: int, words: list[str]
) -> None:
    result = destroy_with_failing_engine(tmp_path, error)
    assert result.exit_code == exit_code  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert all(word in lines[0] for word in words), lines[0]
