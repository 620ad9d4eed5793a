"""Connection files: one value per file, trailing newline, mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mapt.core import InputError, OperationError
from mapt.targets import check_connection_folder, write_connection_files
from mapt.targets.aws import CONNECTION_OUTPUTS, host_connection_values

KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_hold_one_value_each_with_a_newline_and_mode_0600(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "conn"
    outputs = {
        "host": "203.0.113.10",
        "username": "ec2-user",
        "id_rsa": KEY,
        "userpassword": "Pw-1234",
        "vpc_id": "vpc-1",  # not a connection value
    }
    written = write_connection_files(
        folder, host_connection_values(outputs), known=CONNECTION_OUTPUTS
    )
    assert [p.name for p in written] == ["host", "username", "id_rsa", "userpassword"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "host",
        "id_rsa",
        "username",
        "userpassword",
    ]
    assert (folder / "host").read_text() == "203.0.113.10\n"
    assert (folder / "username").read_text() == "ec2-user\n"
    assert (folder / "id_rsa").read_text() == KEY  # already ends in one newline: not doubled
    assert (folder / "userpassword").read_text() == "Pw-1234\n"
    for path in written:
        assert mode(path) == 0o600, path
    assert mode(folder) == 0o700


def test_airgap_values_and_existing_files_are_replaced_not_widened(tmp_path: Path) -> None:
    old = tmp_path / "host"
    old.write_text("old\n")
    old.chmod(0o644)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-outside"
    elsewhere.write_text("untouched\n")
    (tmp_path / "username").symlink_to(elsewhere)
    values = host_connection_values(
        {
            "host": "10.0.101.10",
            "username": "fedora",
            "id_rsa": "k1",
            "bastion_host": "198.51.100.7",
            "bastion_username": "ec2-user",
            "bastion_id_rsa": "k2",
        }
    )
    # Mode 0600 whatever the umask: one that strips the owner's write bit too.
    previous = os.umask(0o277)
    try:
        write_connection_files(tmp_path, values, known=CONNECTION_OUTPUTS)
    finally:
        os.umask(previous)
    assert old.read_text() == "10.0.101.10\n"
    assert mode(old) == 0o600
    assert not (tmp_path / "username").is_symlink()
    assert elsewhere.read_text() == "untouched\n"
    assert (tmp_path / "bastion_host").read_text() == "198.51.100.7\n"
    assert (tmp_path / "bastion_id_rsa").read_text() == "k2\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_reused_folder_keeps_no_file_of_the_earlier_host_and_nothing_else_goes(
    tmp_path: Path,
) -> None:
    # An air-gapped Windows host with a DNS name wrote every kind of file there...
    earlier = {
        "host": "10.0.101.10", "dns_name": "ci-42.example.org", "username": "Administrator",
        "id_rsa": "k1", "userpassword": "Pw-1234", "bastion_host": "198.51.100.7",
        "bastion_username": "ec2-user", "bastion_id_rsa": "k0",
    }  # fmt: skip
    write_connection_files(tmp_path, host_connection_values(earlier), known=CONNECTION_OUTPUTS)
    (tmp_path / "notes.txt").write_text("the user's\n")
    (tmp_path / "kubeconfig").write_text("also the user's\n")
    # ...then a plain public host reuses the folder: a script reading bastion_host or
    # userpassword must not find the earlier host's.
    later = {"host": "203.0.113.7", "username": "fedora", "id_rsa": "k2"}
    write_connection_files(tmp_path, host_connection_values(later), known=CONNECTION_OUTPUTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "host", "id_rsa", "kubeconfig", "notes.txt", "username",
    ]  # fmt: skip
    assert (tmp_path / "host").read_text() == "203.0.113.7\n"
    assert (tmp_path / "notes.txt").read_text() == "the user's\n"


def test_a_file_where_the_folder_should_be_is_bad_input_first_and_a_failure_at_write(
    tmp_path: Path,
) -> None:
    target = tmp_path / "conn"
    target.write_text("I am a file")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_connection_folder(target)
    # At write time the machine exists: not exit 2 ("nothing was created").
    with pytest.raises(OperationError, match="cannot create the connection details folder"):
        write_connection_files(target, {"host": "h"}, known=CONNECTION_OUTPUTS)
    assert target.read_text() == "I am a file"


def test_names_cannot_escape_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_connection_files(tmp_path, {"../host": "h"}, known=CONNECTION_OUTPUTS)
