"""PulumiEngine against the fake CLI: the exact commands, environment and error mapping."""

from __future__ import annotations

import io
import json
import os
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from pulumi.automation import CommandResult
from pulumi.automation.errors import create_command_error

from mapt.core import (
    InputError,
    NoCapacityError,
    OperationError,
    PrerequisiteError,
    StateLockedError,
    redact,
)
from mapt.stacks import PASSPHRASE_FILE_NAME, PulumiEngine, StackNotFoundError, StackRef
from tests.stacks.fake_pulumi import FakePulumi, urn
from tests.stacks.transcripts import transcript

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN"


def program() -> None:
    """Never run by the fake CLI; the SDK serves it to the engine over gRPC."""
    raise AssertionError("the fake CLI does not run programs")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def ref(state: Path) -> StackRef:
    return StackRef("demo", "host", f"file://{state}")


def engine_with(fake: FakePulumi, **kwargs: object) -> PulumiEngine:
    return PulumiEngine(pulumi_command=fake, progress_stream=io.StringIO(), live=False, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", AWS_TOKEN)


@pytest.mark.usefixtures("credentials")
def test_up_on_a_file_backend_runs_the_expected_commands(
    fake_pulumi: FakePulumi, ref: StackRef, state: Path
) -> None:
    fake_pulumi.outputs = {"host": ("10.0.0.5", False), "id_rsa": ("PRIVATE-KEY-TEXT", True)}
    outputs = engine_with(fake_pulumi).up(ref, program, config={"aws:region": "eu-north-1"})

    assert outputs == {"host": "10.0.0.5", "id_rsa": "PRIVATE-KEY-TEXT"}
    # Whether the stack exists is read in the backend, the outputs come with one export.
    assert fake_pulumi.verbs() == [
        "stack init", "config set-all", "up", "stack export", "stack history",
    ]  # fmt: skip
    init, config, up = fake_pulumi.calls[:3]
    assert init.args == ["stack", "init", "host-demo"]  # passphrase: no --secrets-provider
    assert config.args == [
        "config", "set-all", "--stack", "host-demo", "--plaintext", "aws:region=eu-north-1",
    ]  # fmt: skip
    assert up.args[:3] == ["up", "--yes", "--skip-preview"]
    assert "--refresh" not in up.args
    assert up.args[up.args.index("--exec-kind") + 1] == "auto.inline"
    assert any(a.startswith("--client=127.0.0.1:") for a in up.args)
    assert up.args[-2:] == ["--stack", "host-demo"]
    # The backend: in the project settings and in the environment, as an absolute URL.
    for call in fake_pulumi.calls:
        assert call.project["name"] == "demo"
        assert call.project["backend"] == {"url": f"file://{state}"}
        assert call.env["PULUMI_BACKEND_URL"] == f"file://{state}"
    # Secrets: the generated passphrase is handed over by file, never by value.
    passphrase_file = state / PASSPHRASE_FILE_NAME
    assert up.env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(passphrase_file)
    assert "PULUMI_CONFIG_PASSPHRASE" not in up.env
    passphrase = passphrase_file.read_text().strip()
    # No credential or secret anywhere in what mapt hands the CLI: arguments, extra
    # environment, or the files it writes into the workspace.
    for call in fake_pulumi.calls:
        text = " ".join(call.args) + repr(call.env) + repr(call.files)
        for secret in (AWS_SECRET, AWS_TOKEN, "AKIAIOSFODNN7EXAMPLE", passphrase):
            assert secret not in text
        assert "aws:secretKey" not in text and "aws:accessKey" not in text
    # Secret outputs are masked in logs from now on.
    assert redact("key is PRIVATE-KEY-TEXT") == "key is ***"


def test_up_with_refresh_on_an_existing_stack(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    fake_pulumi.add_stack(ref)
    engine_with(fake_pulumi).up(ref, program, refresh=True)
    assert fake_pulumi.verbs() == ["up", "stack export", "stack history"]
    assert "--refresh" in fake_pulumi.call("up").args


def state_bucket(region: str) -> None:
    """The S3 backend's bucket, in moto: mapt reads there whether a stack exists."""
    import boto3

    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    boto3.client("s3", region_name=region).create_bucket(
        Bucket="ci-state", **({"CreateBucketConfiguration": location} if location else {})
    )


@pytest.mark.usefixtures("aws")
def test_s3_backend_with_a_kms_secrets_provider(fake_pulumi: FakePulumi) -> None:
    state_bucket("eu-west-1")
    ref = StackRef("demo", "spotOption", "s3://ci-state/mapt?region=eu-west-1")
    engine = engine_with(fake_pulumi, secrets_provider="awskms://alias/mapt?region=eu-west-1")
    engine.up(ref, program, config={"aws:region": "eu-west-1"})
    init = fake_pulumi.call("stack init")
    assert init.args == [
        "stack", "init", "spotOption-demo",
        "--secrets-provider", "awskms://alias/mapt?region=eu-west-1",
    ]  # fmt: skip
    for call in fake_pulumi.calls:
        assert call.project["backend"] == {"url": "s3://ci-state/mapt?region=eu-west-1"}
        assert call.env["PULUMI_BACKEND_URL"] == "s3://ci-state/mapt?region=eu-west-1"
        assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in call.env


@pytest.mark.usefixtures("aws")
def test_s3_backend_uses_the_callers_passphrase(
    fake_pulumi: FakePulumi, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_bucket("us-east-1")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct horse battery staple")
    ref = StackRef("demo", "host", "s3://ci-state")
    engine_with(fake_pulumi).up(ref, program)
    # The CLI inherits it from the environment; mapt neither copies nor logs it.
    assert all("correct horse" not in repr(c.env) + " ".join(c.args) for c in fake_pulumi.calls)
    assert redact("pass correct horse battery staple") == "pass ***"


@pytest.mark.parametrize("named", ["ci-pass", "~/ci-pass"])
def test_a_relative_or_home_passphrase_file_reaches_the_cli_as_the_file_mapt_checked(
    fake_pulumi: FakePulumi,
    ref: StackRef,
    state: Path,
    passphrase_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    named: str,
) -> None:
    """The CLI runs in a temporary workspace directory and expands no ``~``: it opens the
    path it is given there (Go's ``filepath.Abs``), so it must be given the file mapt
    found and checked in its own working directory."""
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", named)

    engine_with(fake_pulumi).up(ref, program)

    assert fake_pulumi.verbs()[:2] == ["stack init", "up"]
    for call in fake_pulumi.calls:
        given = {**os.environ, **call.env}["PULUMI_CONFIG_PASSPHRASE_FILE"]
        assert (Path(call.cwd) / given).read_text() == "the-ci-passphrase\n", call.verb
    assert not (state / PASSPHRASE_FILE_NAME).exists()


def test_s3_backend_without_passphrase_or_provider_fails_before_any_command(
    fake_pulumi: FakePulumi,
) -> None:
    with pytest.raises(PrerequisiteError, match=r"PULUMI_CONFIG_PASSPHRASE.*secrets-provider"):
        engine_with(fake_pulumi).up(StackRef("demo", "host", "s3://ci-state"), program)
    assert fake_pulumi.calls == []


def test_bad_secrets_provider_is_an_input_error() -> None:
    with pytest.raises(InputError, match="'vault'"):
        PulumiEngine(secrets_provider="vault")


@pytest.mark.parametrize("key", ["aws:accessKey", "aws:secretKey", "aws:token"])
def test_credentials_are_never_written_to_config(
    fake_pulumi: FakePulumi, ref: StackRef, key: str
) -> None:
    with pytest.raises(InputError, match=key):
        engine_with(fake_pulumi).up(ref, program, config={key: "anything"})
    assert fake_pulumi.calls == []


def test_registered_secrets_are_never_written_to_config(
    fake_pulumi: FakePulumi, ref: StackRef
) -> None:
    from mapt.core import register_secret

    register_secret("ghp_runnertokenvalue")
    with pytest.raises(InputError, match="'app:runner'") as caught:
        engine_with(fake_pulumi).up(ref, program, config={"app:runner": "ghp_runnertokenvalue"})
    assert "ghp_" not in str(caught.value)


def test_destroy_destroys_then_removes_the_stack(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    fake_pulumi.add_stack(ref)
    assert engine_with(fake_pulumi).destroy(ref) is True
    assert fake_pulumi.verbs() == ["destroy", "stack history", "stack rm"]
    destroy = fake_pulumi.call("destroy")
    assert destroy.args[:3] == ["destroy", "--skip-preview", "--yes"]
    assert "--refresh" not in destroy.args
    assert fake_pulumi.call("stack rm").args == ["stack", "rm", "--yes", "host-demo"]
    assert "host-demo" not in fake_pulumi.stacks


def test_destroy_of_a_missing_stack_is_a_no_op_that_writes_nothing(
    fake_pulumi: FakePulumi, ref: StackRef, state: Path
) -> None:
    assert engine_with(fake_pulumi).destroy(ref) is False
    assert fake_pulumi.verbs() == []  # no checkpoint in the backend: the CLI never starts
    assert not state.exists()  # no state folder, no passphrase file (a mistyped URL)


def test_destroy_of_a_missing_stack_needs_no_passphrase_for_the_backends_others(
    fake_pulumi: FakePulumi, ref: StackRef, state: Path
) -> None:
    """Another project's stack, encrypted with a passphrase kept elsewhere (its CI's
    environment): destroying a stack that is not there is still nothing to do."""
    other = state / ".pulumi" / "stacks" / "other" / "host-other.json"
    other.parent.mkdir(parents=True)
    other.write_text(json.dumps({"version": 3, "checkpoint": {"latest": {"resources": []}}}))
    before = sorted(state.rglob("*"))
    assert engine_with(fake_pulumi).destroy(ref) is False
    assert fake_pulumi.verbs() == []
    assert sorted(state.rglob("*")) == before  # no mapt-passphrase made beside them


def test_outputs_of_a_missing_stack_are_not_found_and_write_nothing(
    fake_pulumi: FakePulumi, ref: StackRef, state: Path
) -> None:
    with pytest.raises(StackNotFoundError) as caught:
        engine_with(fake_pulumi).outputs(ref)
    assert str(caught.value) == f"stack host-demo does not exist in file://{state}"
    assert caught.value.exit_code == 1
    assert fake_pulumi.verbs() == [] and not state.exists()


def test_exists_and_outputs(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    """``exists`` reads the backend's checkpoint files: no CLI start."""
    engine = engine_with(fake_pulumi)
    assert engine.exists(ref) is False
    assert fake_pulumi.verbs() == []
    with pytest.raises(StackNotFoundError, match="host-demo does not exist") as caught:
        engine.outputs(ref)
    assert caught.value.exit_code == 1
    fake_pulumi.add_stack(ref)
    fake_pulumi.outputs = {"az": ("eu-north-1a", False), "price": (0.0123, False)}
    assert engine.exists(ref) is True
    assert engine.outputs(ref) == {"az": "eu-north-1a", "price": 0.0123}
    assert fake_pulumi.verbs() == ["stack export"]  # a missing stack's are read in the backend


def test_preview_of_a_new_stack_reports_steps_and_leaves_no_stack(
    fake_pulumi: FakePulumi, ref: StackRef
) -> None:
    vpc = urn("host-demo", "demo", "aws:ec2/vpc:Vpc", "network")
    fake_pulumi.events = [
        {"resourcePreEvent": {"metadata": {"op": "create", "urn": vpc, "type": "aws:ec2/vpc:Vpc"}}},
        {"summaryEvent": {"resourceChanges": {"create": 2}}},
    ]
    preview = engine_with(fake_pulumi).preview(ref, program)
    assert preview.changes == {"create": 2}
    assert [(s.op, s.type, s.name) for s in preview.steps] == [
        ("create", "aws:ec2/vpc:Vpc", "network")
    ]
    assert fake_pulumi.verbs()[-1] == "stack rm" and fake_pulumi.stacks == set()


def test_progress_is_streamed_from_engine_events(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    vpc = urn("host-demo", "demo", "aws:ec2/vpc:Vpc", "network")
    meta = {"op": "create", "urn": vpc, "type": "aws:ec2/vpc:Vpc"}
    fake_pulumi.events = [
        {"resourcePreEvent": {"metadata": meta}},
        {"resOutputsEvent": {"metadata": meta}},
        {"summaryEvent": {"resourceChanges": {"create": 1}}},
    ]
    stream = io.StringIO()
    PulumiEngine(pulumi_command=fake_pulumi, progress_stream=stream, live=False).up(ref, program)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("mapt: host-demo: up started")
    assert any("create aws:ec2/vpc:Vpc network done [1/1 resources" in line for line in lines)
    assert lines[-1].startswith("mapt: host-demo: up finished: 1/1 resources")


def test_debug_raises_pulumi_log_verbosity(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    engine_with(fake_pulumi, debug=True).up(ref, program)
    args = fake_pulumi.call("up").args
    assert args[args.index("--verbose") + 1] == "3"
    assert "--logflow" in args and "--debug" in args
    engine_with(fake_pulumi).up(ref, program)
    assert "--verbose" not in fake_pulumi.calls[-4].args  # the second up, quiet


# -- failures ------------------------------------------------------------------------

# Captured from a real CLI (tests/stacks/transcripts, checked by the real-engine tier).
LOCKED = transcript("locked")
NOT_FOUND = transcript("stack_not_found")
PROGRAM_ERROR = transcript("program_error")
INCORRECT_PASSPHRASE = transcript("incorrect_passphrase")
# No provider plugin can run where the transcripts are captured: this one is written by
# hand, in the shape of program_error.json's diagnostics.
PROVIDER_ERROR = CommandResult(
    stdout=(
        "Diagnostics:\n  aws:ec2:Instance (host):\n"
        "    error: creating EC2 Instance: operation error EC2: RunInstances, "
        "api error InsufficientInstanceCapacity: We currently do not have sufficient "
        "m6i.large capacity in the Availability Zone you requested (eu-north-1a).\n"
    ),
    stderr="error: update failed",
    code=255,
)


def test_locked_stack_maps_to_state_locked_exit_3(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    fake_pulumi.add_stack(ref)
    fake_pulumi.failures["up"] = LOCKED
    with pytest.raises(StateLockedError) as caught:
        engine_with(fake_pulumi).up(ref, program)
    assert caught.value.exit_code == 3
    message = str(caught.value)
    assert message.startswith(
        "stack host-demo is locked by another run; retry, or --force-destroy if that run is dead"
    )
    assert "runner@gh-runner-7, pid 4242" in message and "\n" not in message


def test_a_wrong_passphrase_is_a_missing_prerequisite_exit_5(
    fake_pulumi: FakePulumi, ref: StackRef
) -> None:
    fake_pulumi.add_stack(ref)
    fake_pulumi.failures["stack export"] = INCORRECT_PASSPHRASE
    with pytest.raises(PrerequisiteError) as caught:
        engine_with(fake_pulumi).outputs(ref)
    assert caught.value.exit_code == 5
    assert str(caught.value).startswith(
        f"this backend's stacks ({ref.backend_url}) were encrypted with another passphrase"
    )


def test_stack_not_found_on_output_for_outputs(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    """The stack was there when mapt looked, and removed before the CLI read it."""
    fake_pulumi.add_stack(ref)
    fake_pulumi.failures["stack export"] = NOT_FOUND
    with pytest.raises(StackNotFoundError, match="stack host-demo does not exist in file://"):
        engine_with(fake_pulumi).outputs(ref)


def test_outputs_start_the_cli_once(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    """One ``stack export --show-secrets`` (it names the stack, and fails on a missing one)
    gives the values and which are secret: not the SDK's two ``stack output`` runs."""
    from mapt.core import redact

    fake_pulumi.add_stack(ref)
    fake_pulumi.outputs = {
        "id_rsa": ("PRIVATE-KEY-TEXT", True),
        "host": ("10.0.0.5", False),
        "ports": ([22, 443], True),
        "tags": ({"owner": "ci", "count": 2}, False),
    }
    assert engine_with(fake_pulumi).outputs(ref) == {
        "id_rsa": "PRIVATE-KEY-TEXT",
        "host": "10.0.0.5",
        "ports": [22, 443],
        "tags": {"owner": "ci", "count": 2},
    }
    assert fake_pulumi.verbs() == ["stack export"]
    assert fake_pulumi.calls[0].args[-2:] == ["--stack", "host-demo"]
    assert redact("key PRIVATE-KEY-TEXT at 10.0.0.5") == "key *** at 10.0.0.5"


def test_a_value_only_stack_output_renders_is_read_the_sdks_way(
    fake_pulumi: FakePulumi, ref: StackRef
) -> None:
    fake_pulumi.add_stack(ref)
    asset = {"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17", "text": "x"}
    fake_pulumi.outputs = {"file": (asset, False), "host": ("10.0.0.5", False)}
    assert engine_with(fake_pulumi).outputs(ref) == {"file": asset, "host": "10.0.0.5"}
    assert fake_pulumi.verbs() == ["stack export", "stack output", "stack output"]


def test_exists_on_a_backend_whose_state_cannot_be_listed_is_an_error(
    fake_pulumi: FakePulumi, tmp_path: Path
) -> None:
    (tmp_path / ".pulumi").write_text("not a folder")
    with pytest.raises(OperationError) as raised:
        engine_with(fake_pulumi).exists(StackRef("demo", "host", f"file://{tmp_path}"))
    assert "Not a directory" in raised.value.message
    assert raised.value.exit_code == 1
    assert fake_pulumi.verbs() == []


def test_exported_outputs_read_what_pulumi_marks() -> None:
    """Secrets (whole values and inside lists) read from their plain text, every string
    in them registered for redaction, a nested one too; a value Pulumi marks as
    something else (an asset) is left to ``stack output`` (None)."""
    from mapt.core import redact
    from mapt.stacks._workspace import exported_outputs
    from tests.stacks.fake_pulumi import SECRET_SIGNATURE

    def exported(outputs: dict[str, object]) -> dict[str, object]:
        stack = {"type": "pulumi:pulumi:Stack", "outputs": outputs}
        return {"resources": [{"type": "aws:s3/bucket:Bucket"}, stack]}

    key = {**SECRET_SIGNATURE, "plaintext": '"PRIVATE-KEY-1"'}
    nested = {**SECRET_SIGNATURE, "plaintext": '"NESTED-TOKEN-2"'}
    outputs = {"key": key, "keys": [nested, "plain"], "n": 2}
    assert exported_outputs("host-demo", 3, exported(outputs)) == {
        "key": ("PRIVATE-KEY-1", True),
        "keys": (["NESTED-TOKEN-2", "plain"], False),  # as the SDK says: only a whole value
        "n": (2, False),
    }
    assert redact("PRIVATE-KEY-1 NESTED-TOKEN-2 plain") == "*** *** plain"
    asset = {"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17", "text": "x"}
    assert exported_outputs("host-demo", 3, exported({"file": asset})) is None
    assert exported_outputs("host-demo", 3, {}) == {}  # created, never updated
    assert exported_outputs("host-demo", 3, {"resources": []}) == {}


@pytest.mark.parametrize(
    ("version", "deployment", "unexpected"),
    [
        (4, {"resources": [{"type": "pulumi:pulumi:Stack", "outputs": {}}]}, "version 4, not 3"),
        (None, {}, "no version"),
        (3, None, "no deployment"),
        (3, {"resources": [{"type": "aws:s3/bucket:Bucket"}]}, "0 pulumi:pulumi:Stack"),
        (3, {"resources": {"type": "pulumi:pulumi:Stack"}}, "not a list of objects"),
        (3, {"resources": [{"type": "pulumi:pulumi:Stack", "outputs": []}]}, "not an object"),
    ],
)
def test_exported_state_of_an_unknown_shape_is_an_error_not_no_outputs(
    version: object, deployment: object, unexpected: str
) -> None:
    """Outputs that cannot be found are unknown, never empty: ``host destroy`` would
    find no runner id and leave the GitHub runner registered."""
    from mapt.stacks._workspace import exported_outputs

    with pytest.raises(OperationError) as raised:
        exported_outputs("host-demo", version, deployment)
    assert "host-demo" in raised.value.message
    assert unexpected in raised.value.message
    assert raised.value.exit_code == 1


def test_an_export_that_is_not_json_is_an_operation_error_without_its_text(
    fake_pulumi: FakePulumi, ref: StackRef
) -> None:
    fake_pulumi.add_stack(ref)
    fake_pulumi.export_text = "SECRET-PLAINTEXT-3 {"
    with pytest.raises(OperationError) as raised:
        engine_with(fake_pulumi).outputs(ref)
    assert "stack export of stack" in raised.value.message
    assert raised.value.message == (
        f"pulumi stack export of stack {ref.stack_name} printed no JSON document "
        "(JSONDecodeError at position 0)"
    )
    rendered = "".join(traceback.format_exception(raised.value))
    assert "SECRET-PLAINTEXT-3" not in rendered
    assert raised.value.__context__ is None  # the decode error holds the printed text


def test_outputs_of_an_export_in_another_format_are_an_error_not_none(
    fake_pulumi: FakePulumi, ref: StackRef
) -> None:
    fake_pulumi.add_stack(ref)
    fake_pulumi.export_text = json.dumps({"version": 4, "deployment": {"resources": []}})
    with pytest.raises(OperationError) as raised:
        engine_with(fake_pulumi).outputs(ref)
    assert raised.value.message == (
        f"cannot read the outputs of stack {ref.stack_name}: its exported state has "
        "version 4, not 3"
    )


def test_program_error_maps_to_operation_error_with_its_message(
    fake_pulumi: FakePulumi, ref: StackRef
) -> None:
    fake_pulumi.failures["up"] = PROGRAM_ERROR
    with pytest.raises(OperationError) as caught:
        engine_with(fake_pulumi).up(ref, program)
    assert type(caught.value) is OperationError
    assert str(caught.value) == (
        "the program of stack host-demo failed: subnet cidr 10.0.300.0/24 is invalid"
    )


def test_other_failures_carry_the_engine_diagnostics_redacted(
    fake_pulumi: FakePulumi, ref: StackRef
) -> None:
    from mapt.core import register_secret

    register_secret("m6i.large capacity")  # stands in for a secret in a diagnostic
    fake_pulumi.events = [
        {"diagnosticEvent": {"severity": "info", "message": "creating instance"}},
        {
            "diagnosticEvent": {
                "severity": "error",
                "message": PROVIDER_ERROR.stdout.split("error: ")[1],
            }
        },
    ]

    def fail(call: object) -> None:
        raise create_command_error(PROVIDER_ERROR)

    fake_pulumi.on_up = fail
    with pytest.raises(OperationError) as caught:
        engine_with(fake_pulumi).up(ref, program)
    message = str(caught.value)
    assert message.startswith("pulumi up of stack host-demo failed: creating EC2 Instance")
    assert "InsufficientInstanceCapacity" in message
    assert "m6i.large capacity" not in message and "***" in message
    assert "update failed" not in message


def test_diagnostics_fall_back_to_the_cli_output(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    fake_pulumi.failures["up"] = PROVIDER_ERROR
    with pytest.raises(
        OperationError, match=r"failed: creating EC2 Instance.*InsufficientInstance"
    ):
        engine_with(fake_pulumi).up(ref, program)


def test_a_failed_update_is_never_success(fake_pulumi: FakePulumi, ref: StackRef) -> None:
    fake_pulumi.result = "failed"  # exit code 0, but the update did not succeed
    with pytest.raises(OperationError, match="ended as 'failed'"):
        engine_with(fake_pulumi).up(ref, program)


# What the CLI prints when the passphrase cannot open the stack's secrets manager
# (pkg/secrets/passphrase: ErrIncorrectPassphrase, wrapped by the DIY backend), and when
# it opened a locked one and then had to decrypt a secret output.
WRONG_PASSPHRASE = CommandResult(
    stdout="",
    stderr='error: constructing secrets manager of type "passphrase": incorrect passphrase\n',
    code=255,
)
CANNOT_DECRYPT = CommandResult(
    stdout=(
        "Updating (host-demo):\n\n"
        "Diagnostics:\n  pulumi:pulumi:Stack (demo-host-demo):\n"
        "    error: failed to decrypt: incorrect passphrase, please set "
        "PULUMI_CONFIG_PASSPHRASE to the correct passphrase or set "
        "PULUMI_CONFIG_PASSPHRASE_FILE to a file containing the passphrase\n"
    ),
    stderr="error: update failed",
    code=255,
)


@pytest.mark.parametrize("transcript", [WRONG_PASSPHRASE, CANNOT_DECRYPT], ids=["open", "decrypt"])
@pytest.mark.parametrize("operation", ["up", "destroy"])
def test_incorrect_passphrase_is_a_missing_prerequisite_exit_5(
    fake_pulumi: FakePulumi, ref: StackRef, transcript: CommandResult, operation: str
) -> None:
    fake_pulumi.add_stack(ref)
    fake_pulumi.failures[operation] = transcript
    engine = engine_with(fake_pulumi)
    with pytest.raises(PrerequisiteError) as caught:
        if operation == "up":
            engine.up(ref, program)
        else:
            engine.destroy(ref)
    assert caught.value.exit_code == 5
    message = str(caught.value)
    assert message.startswith(
        f"this backend's stacks ({ref.backend_url}) were encrypted with another passphrase; "
        "set PULUMI_CONFIG_PASSPHRASE[_FILE]"
    )
    assert "\n" not in message


def test_stacks_without_their_passphrase_file_fail_before_any_command(
    fake_pulumi: FakePulumi, ref: StackRef, state: Path
) -> None:
    checkpoint = state / ".pulumi" / "stacks" / "demo" / "host-demo.json"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("{}")
    with pytest.raises(PrerequisiteError, match="encrypted with another passphrase"):
        engine_with(fake_pulumi).up(ref, program)
    assert fake_pulumi.calls == []
    assert not (state / PASSPHRASE_FILE_NAME).exists()


@pytest.mark.parametrize("umask", [0o000, 0o022], ids=["umask-000", "umask-022"])
def test_a_run_creates_a_private_state_folder_and_passphrase_file(
    fake_pulumi: FakePulumi, tmp_path: Path, umask: int
) -> None:
    state = tmp_path / "new" / "state"
    old = os.umask(umask)
    try:
        engine_with(fake_pulumi).up(StackRef("demo", "host", f"file://{state}"), program)
    finally:
        os.umask(old)
    modes = {p: p.stat().st_mode & 0o777 for p in (tmp_path / "new", state)}
    assert modes == {tmp_path / "new": 0o700, state: 0o700}
    assert (state / PASSPHRASE_FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_a_mapt_error_raised_by_the_program_keeps_its_class(
    fake_pulumi: FakePulumi, ref: StackRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program's own error (here: no capacity) reaches the caller with its exit code."""
    import pulumi.automation._stack as stack_module

    served: list[Callable[[], None]] = []
    real_server = stack_module.LanguageServer

    def language_server(program: Callable[[], None]) -> object:
        served.append(program)  # the program the SDK serves to the engine
        return real_server(program)

    monkeypatch.setattr(stack_module, "LanguageServer", language_server)

    def engine_runs_the_program(call: object) -> None:
        with pytest.raises(NoCapacityError):
            served[-1]()
        raise create_command_error(PROGRAM_ERROR)

    def raising() -> None:
        raise NoCapacityError("no spot capacity for m6i.large in eu-north-1")

    fake_pulumi.on_up = engine_runs_the_program
    with pytest.raises(NoCapacityError) as caught:
        engine_with(fake_pulumi).up(ref, raising)
    assert caught.value.exit_code == 4


# -- the Pulumi CLI missing --------------------------------------------------------------


def automation_dirs() -> set[str]:
    import tempfile

    root = Path(tempfile.gettempdir())
    return {p.name for p in root.glob("automation-*")} | {
        p.name for p in root.glob("mapt-pulumi-*")
    }


def test_missing_cli_is_a_prerequisite_error_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ref: StackRef, state: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    before = automation_dirs()
    with pytest.raises(PrerequisiteError) as caught:
        PulumiEngine(progress_stream=io.StringIO()).up(ref, program)
    message = str(caught.value)
    assert caught.value.exit_code == 5
    assert "Pulumi CLI was not found" in message
    assert "mapt setup pulumi" in message and "PulumiCommand.install()" in message
    assert "get.pulumi.com" in message
    assert automation_dirs() == before
    assert not state.exists()  # nothing written to the backend either


def _cli_in_pulumi_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version: str) -> Path:
    """A stand-in ``pulumi`` reporting ``version``, only under ``$PULUMI_HOME/bin``."""
    bin_dir = tmp_path / "pulumi-home" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "pulumi"
    script.write_text(f"#!/bin/sh\necho v{version}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))
    return script


def test_too_old_cli_is_a_prerequisite_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _cli_in_pulumi_home(monkeypatch, tmp_path, "3.100.0")
    from mapt.stacks import pulumi_command

    with pytest.raises(PrerequisiteError, match=r"3\.205\.0.*mapt setup pulumi"):
        pulumi_command()


def test_cli_is_found_in_pulumi_home_and_version_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = _cli_in_pulumi_home(monkeypatch, tmp_path, "3.272.0")
    from mapt.stacks import find_pulumi, pulumi_command

    assert find_pulumi() == script
    command = pulumi_command()
    assert command.command == str(script) and str(command.version) == "3.272.0"
    assert os.access(command.command, os.X_OK)


def test_the_cli_version_is_checked_once_per_executable_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each engine (one per operation) needs the checked CLI; ``pulumi version`` starts the
    Go CLI, so it runs once per file and process. A replaced file is checked again."""
    script = _cli_in_pulumi_home(monkeypatch, tmp_path, "3.272.0")
    runs = tmp_path / "runs"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\necho v3.272.0\n")
    from mapt.stacks import pulumi_command

    first = pulumi_command()
    assert pulumi_command() is first
    assert runs.read_text().splitlines() == ["run"]

    upgraded = tmp_path / "pulumi-new"  # an install replaces the file, as mv would
    upgraded.write_text(f"#!/bin/sh\necho run >> {runs}\necho v3.100.0\n")
    upgraded.chmod(0o755)
    upgraded.replace(script)
    with pytest.raises(PrerequisiteError, match=r"3\.100\.0.*3\.205\.0"):
        pulumi_command()
    with pytest.raises(PrerequisiteError):  # a failed check is not remembered
        pulumi_command()
    assert runs.read_text().splitlines() == ["run"] * 3
