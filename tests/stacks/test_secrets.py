from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mapt.core import PrerequisiteError, redact
from mapt.stacks import PASSPHRASE_FILE_NAME, parse_backend_url, secrets_setup


def test_file_backend_gets_a_private_passphrase_file_reused_later(tmp_path: Path) -> None:
    backend = parse_backend_url(f"file://{tmp_path}/state")
    first = secrets_setup(backend, environ={})
    path = tmp_path / "state" / PASSPHRASE_FILE_NAME
    assert first.env == {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path)}
    assert first.provider is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    passphrase = path.read_text().strip()
    assert len(passphrase) >= 32
    assert redact(f"x {passphrase} y") == "x *** y"

    again = secrets_setup(backend, environ={})
    assert again == first and path.read_text().strip() == passphrase


def test_reused_passphrase_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / PASSPHRASE_FILE_NAME
    path.write_text("an-old-passphrase\n")
    path.chmod(0o644)
    secrets_setup(parse_backend_url(f"file://{tmp_path}"), environ={})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "an-old-passphrase\n"


def test_passphrase_from_the_environment_wins(tmp_path: Path) -> None:
    backend = parse_backend_url(f"file://{tmp_path}")
    setup = secrets_setup(backend, environ={"PULUMI_CONFIG_PASSPHRASE": "from-the-env"})
    assert setup.env == {} and not (tmp_path / PASSPHRASE_FILE_NAME).exists()
    passphrase_file = tmp_path / "pp"
    passphrase_file.write_text("from-a-file\n")
    setup = secrets_setup(backend, environ={"PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file)})
    assert setup.env == {} and redact("from-a-file") == "***"


def test_unreadable_passphrase_file_is_a_prerequisite_error(tmp_path: Path) -> None:
    backend = parse_backend_url("s3://ci-state")
    with pytest.raises(PrerequisiteError, match="missing"):
        secrets_setup(backend, environ={"PULUMI_CONFIG_PASSPHRASE_FILE": str(tmp_path / "missing")})


def test_s3_needs_a_passphrase_or_a_kms_provider() -> None:
    backend = parse_backend_url("s3://ci-state/mapt")
    with pytest.raises(PrerequisiteError) as caught:
        secrets_setup(backend, environ={})
    assert caught.value.exit_code == 5
    assert "s3://ci-state/mapt" in str(caught.value) and "awskms://" in str(caught.value)
    setup = secrets_setup(backend, "awskms://alias/mapt", environ={})
    assert setup.provider == "awskms://alias/mapt" and setup.env == {}
