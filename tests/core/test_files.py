"""Private folders and files: modes whatever the umask, whole files, nothing left over."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mapt.core import make_private_dir, write_private_file


@pytest.fixture(params=[0o000, 0o022], ids=["umask 000", "umask 022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_every_folder_made_is_0700_and_existing_ones_are_left(tmp_path: Path, umask: int) -> None:
    tmp_path.chmod(0o755)
    make_private_dir(tmp_path / "a" / "b" / "c")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    assert mode(tmp_path) == 0o755


def test_a_file_in_the_way_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        make_private_dir(tmp_path / "file")


def test_files_are_0600_and_leave_no_temporary_behind(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "note"
    assert write_private_file(target, b"first") is True
    assert target.read_bytes() == b"first" and mode(target) == 0o600
    assert os.listdir(tmp_path) == ["note"]


def test_without_replace_the_first_writer_wins(tmp_path: Path) -> None:
    target = tmp_path / "passphrase"
    assert write_private_file(target, b"first", replace=False) is True
    assert write_private_file(target, b"second", replace=False) is False
    assert target.read_bytes() == b"first" and os.listdir(tmp_path) == ["passphrase"]


def test_a_planted_symlink_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    target = tmp_path / "id_rsa"
    target.symlink_to(victim)
    write_private_file(target, b"key")
    assert not target.is_symlink() and target.read_bytes() == b"key"
    assert victim.read_text() == "keep me"
