from __future__ import annotations

import logging

import pytest

from mapt.core import (
    ExitCode,
    InputError,
    MaptError,
    NoCapacityError,
    OperationError,
    PrerequisiteError,
    StateLockedError,
    configure_logging,
    get_logger,
    redact,
    register_secret,
    without_password,
)
from mapt.stacks._engine import check_config


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OperationError, 1),
        (InputError, 2),
        (StateLockedError, 3),
        (NoCapacityError, 4),
        (PrerequisiteError, 5),
    ],
)
def test_every_error_class_has_its_documented_exit_code(error: type[MaptError], code: int) -> None:
    assert error.exit_code == code
    assert issubclass(error, MaptError)


def test_readme_documents_every_exit_code() -> None:
    from tests.harness.spot_market import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"exit code {int(code)} missing from README"


def test_error_text_joins_message_and_hint_in_one_line() -> None:
    error = StateLockedError("stack spotOption-demo is locked by another run.", hint="Retry later.")
    assert str(error) == "stack spotOption-demo is locked by another run. Retry later."
    assert "\n" not in str(error)
    assert str(InputError("bad value 'x'")) == "bad value 'x'"


def test_registered_secrets_never_reach_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(debug=True)
    register_secret("s3cr3t-token-value")
    get_logger("tests").info("token is %s", "s3cr3t-token-value")
    get_logger("mapt.tests").debug("again: s3cr3t-token-value!")
    err = capsys.readouterr().err
    assert "s3cr3t-token-value" not in err
    assert "token is ***" in err and "again: ***!" in err
    assert redact("x s3cr3t-token-value y") == "x *** y"


def test_logs_go_to_stderr_at_the_configured_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(debug=False)
    logger = get_logger("mapt.tests")
    logger.debug("hidden detail")
    logger.warning("visible warning")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "visible warning" in captured.err and "hidden detail" not in captured.err
    assert logging.getLogger("mapt").level == logging.INFO


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("mysql://u:s3cret@h/db", "mysql://u:***@h/db"),
        ("'http://u:p@ss@127.0.0.1/x' is bad", "'http://u:***@127.0.0.1/x' is bad"),
        ("http://user@h/a:b@c", "http://user@h/a:b@c"),  # no password; '@' in the path
        ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
    ],
)
def test_a_urls_password_is_masked_before_it_is_shown(text: str, shown: str) -> None:
    assert without_password(text) == shown


def test_every_redacted_message_masks_a_urls_password() -> None:
    # A backend's endpoint in its query: no message that shows the backend URL (the
    # another-passphrase error, the destroy command a failure prints) shows the password.
    backend = "s3://state?endpoint=http://ci:s3cretpw@127.0.0.1:9000&region=us-east-1"
    assert redact(f"stack host-pr-1 does not exist in {backend}") == (
        "stack host-pr-1 does not exist in "
        "s3://state?endpoint=http://ci:***@127.0.0.1:9000&region=us-east-1"
    )
    # Plain stack config is written unencrypted: a URL with a password is refused there.
    with pytest.raises(InputError, match="'endpoint' holds a secret value"):
        check_config({"endpoint": "http://ci:s3cretpw@127.0.0.1:9000"})
