from __future__ import annotations

import gzip
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mapt.core import PrerequisiteError, redact
from mapt.stacks import PASSPHRASE_FILE_NAME, parse_backend_url, secrets_setup
from mapt.stacks._backend import prepare_backend
from mapt.stacks._secrets import passphrase_of

NOBODY = 65534


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


def test_passphrase_from_the_environment_wins(tmp_path: Path) -> None:
    backend = parse_backend_url(f"file://{tmp_path}")
    setup = secrets_setup(backend, environ={"PULUMI_CONFIG_PASSPHRASE": "from-the-env"})
    assert setup.env == {} and not (tmp_path / PASSPHRASE_FILE_NAME).exists()
    passphrase_file = tmp_path / "pp"
    passphrase_file.write_text("from-a-file\n")
    passphrase_file.chmod(0o600)
    setup = secrets_setup(backend, environ={"PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file)})
    assert setup.env == {"PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file)}
    assert not (tmp_path / PASSPHRASE_FILE_NAME).exists() and redact("from-a-file") == "***"


@pytest.mark.parametrize("named", ["ci-pass", "~/ci-pass"])
def test_a_relative_or_home_passphrase_file_is_the_one_where_mapt_runs(
    passphrase_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: str
) -> None:
    """The file named is found in mapt's working directory (``~`` expanded), and that
    absolute path is what the CLI is given and what the sandbox engine reads, wherever
    they run: not a file of the same name in another directory."""
    environ = {"PULUMI_CONFIG_PASSPHRASE_FILE": named}

    setup = secrets_setup(parse_backend_url("s3://ci-state"), environ=environ)

    assert setup.env == {"PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_home / "ci-pass")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "ci-pass").write_text("a-decoy\n")
    (elsewhere / "ci-pass").chmod(0o600)
    monkeypatch.chdir(elsewhere)
    assert passphrase_of(setup, environ) == "the-ci-passphrase"


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


# -- passphrase files that are not private --------------------------------------------


def refusal(path: Path, environ: dict[str, str], backend_dir: Path) -> PrerequisiteError:
    """The error ``secrets_setup`` raises for ``path``; the file is left as it was."""
    before = (path.read_bytes(), path.stat())
    with pytest.raises(PrerequisiteError) as caught:
        secrets_setup(parse_backend_url(f"file://{backend_dir}"), environ=environ)
    after = path.stat()
    assert path.read_bytes() == before[0]
    assert (after.st_mode, after.st_uid) == (before[1].st_mode, before[1].st_uid)
    assert caught.value.exit_code == 5
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660], ids=oct)
@pytest.mark.parametrize("named_by_env", [False, True], ids=["mapt-file", "env-file"])
def test_passphrase_file_open_to_group_or_others_is_refused(
    tmp_path: Path, mode: int, named_by_env: bool
) -> None:
    path = tmp_path / ("elsewhere" if named_by_env else PASSPHRASE_FILE_NAME)
    path.write_text("an-old-passphrase\n")
    path.chmod(mode)
    environ = {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path)} if named_by_env else {}
    error = refusal(path, environ, tmp_path)
    assert f"mode {mode:04o}" in str(error) and f"chmod 600 {path}" in str(error)
    assert "an-old-passphrase" not in str(error)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
@pytest.mark.parametrize("named_by_env", [False, True], ids=["mapt-file", "env-file"])
def test_passphrase_file_of_another_user_is_refused(tmp_path: Path, named_by_env: bool) -> None:
    path = tmp_path / ("elsewhere" if named_by_env else PASSPHRASE_FILE_NAME)
    path.write_text("planted-by-someone-else\n")
    path.chmod(0o600)
    os.chown(path, NOBODY, NOBODY)
    environ = {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path)} if named_by_env else {}
    error = refusal(path, environ, tmp_path)
    assert "belongs to nobody" in str(error) or f"uid {NOBODY}" in str(error)
    assert "chown" in str(error) and "planted-by-someone-else" not in str(error)


# -- never a new passphrase for stacks made with another one ----------------------------


@pytest.mark.parametrize(
    "checkpoint", ["stacks/demo/host-demo.json", "stacks/spotOption-demo.json.gz"]
)
def test_backend_with_stacks_and_no_passphrase_file_is_refused_and_nothing_written(
    tmp_path: Path, checkpoint: str
) -> None:
    state = tmp_path / "state"
    stack_file = state / ".pulumi" / checkpoint
    stack_file.parent.mkdir(parents=True)
    stack_file.write_bytes(gzip.compress(b"{}") if checkpoint.endswith(".gz") else b"{}")
    before = sorted(p.relative_to(state) for p in state.rglob("*"))
    with pytest.raises(PrerequisiteError) as caught:
        secrets_setup(parse_backend_url(f"file://{state}"), environ={})
    message = str(caught.value)
    assert caught.value.exit_code == 5
    assert message.startswith(
        f"this backend's stacks (file://{state}) were encrypted with another passphrase; "
        "set PULUMI_CONFIG_PASSPHRASE[_FILE]"
    )
    assert str(state / PASSPHRASE_FILE_NAME) in message  # says which file went missing
    assert sorted(p.relative_to(state) for p in state.rglob("*")) == before


def test_leftovers_of_removed_stacks_do_not_block_a_new_passphrase(tmp_path: Path) -> None:
    """``pulumi stack rm`` keeps ``<stack>.json.bak``; no stack needs its passphrase."""
    leftover = tmp_path / ".pulumi" / "stacks" / "demo" / "host-demo.json.bak"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("{}")
    setup = secrets_setup(parse_backend_url(f"file://{tmp_path}"), environ={})
    assert setup.env == {"PULUMI_CONFIG_PASSPHRASE_FILE": str(tmp_path / PASSPHRASE_FILE_NAME)}


def test_stacks_do_not_matter_when_the_passphrase_is_given(tmp_path: Path) -> None:
    stack_file = tmp_path / ".pulumi" / "stacks" / "demo" / "host-demo.json"
    stack_file.parent.mkdir(parents=True)
    stack_file.write_text("{}")
    backend = parse_backend_url(f"file://{tmp_path}")
    assert secrets_setup(backend, environ={"PULUMI_CONFIG_PASSPHRASE": "known"}).env == {}
    assert not (tmp_path / PASSPHRASE_FILE_NAME).exists()


# -- modes, whatever the umask ----------------------------------------------------------


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
def test_state_folders_and_passphrase_file_mapt_creates_are_private(tmp_path: Path) -> None:
    existing = tmp_path / "shared"
    existing.mkdir()
    existing.chmod(0o755)
    state = existing / "ci" / "mapt" / "state"
    backend = parse_backend_url(f"file://{state}")
    prepare_backend(backend)
    secrets_setup(backend, environ={})
    for folder in (existing / "ci", existing / "ci" / "mapt", state):
        assert mode_of(folder) == 0o700, folder
    assert mode_of(state / PASSPHRASE_FILE_NAME) == 0o600
    assert mode_of(existing) == 0o755  # not mapt's: left as it was
    assert sorted(p.name for p in state.iterdir()) == [PASSPHRASE_FILE_NAME]


@pytest.mark.usefixtures("umask")
def test_passphrase_file_beside_a_missing_state_folder_is_private(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state"
    secrets_setup(parse_backend_url(f"file://{state}"), environ={})
    assert mode_of(tmp_path / "new") == 0o700 and mode_of(state) == 0o700
    assert mode_of(state / PASSPHRASE_FILE_NAME) == 0o600


def test_a_file_where_the_state_folder_should_be_is_an_operation_error(tmp_path: Path) -> None:
    from mapt.core import OperationError

    (tmp_path / "state").write_text("not a folder")
    with pytest.raises(OperationError, match="cannot create the state directory"):
        prepare_backend(parse_backend_url(f"file://{tmp_path / 'state' / 'inner'}"))
