"""``--ghactions-*`` on create and destroy: a runner on the host, removed on destroy.

GitHub is played by a real HTTP server on 127.0.0.1 (``tests/integrations``); the
host flow runs on the in-memory engine as in ``test_host.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mapt.stacks import StackRef
from tests.cli.host_harness import Harness
from tests.harness.spot_market import SpotMarket
from tests.integrations.fake_github import REGISTRATION_TOKEN, FakeGitHub, FakeGitHubServer

ACCESS_TOKEN = "ghp_" + "a" * 36
RUNNER = ["--ghactions-runner-repo", "acme/app"]


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.tokens.add(ACCESS_TOKEN)
    fake.add_scope("/repos/acme/app", ["other-runner"])
    with FakeGitHubServer(fake) as server:
        monkeypatch.setenv("GITHUB_API_URL", server.api_url)
        monkeypatch.setenv("GITHUB_TOKEN", ACCESS_TOKEN)
        monkeypatch.delenv("GH_TOKEN", raising=False)
        monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
        yield fake


def user_data(cli: Harness) -> str:
    ref = StackRef("demo", "host", cli.backend)
    (template,) = [r for r in cli.engine.resources(ref) if r.type.endswith("LaunchTemplate")]
    encoded = template.inputs["userData"]
    # Plain: it holds no secret any more (the token is delivered over SSH).
    assert isinstance(encoded, str)
    return base64.b64decode(encoded).decode()


def host_outputs(cli: Harness, project: str = "demo") -> dict[str, object]:
    return cli.engine.outputs(StackRef(project, "host", cli.backend))


def test_create_registers_a_runner_named_mapt_dash_project(
    cli: Harness, market: SpotMarket, github: FakeGitHub, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    github_output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    result = cli.create(
        "--spot", *RUNNER, "--ghactions-runner-labels", "gpu,mapt-42",
        "--ghactions-runner-ephemeral", "--output", "json",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runner_name"] == "mapt-demo"
    assert github.registration_tokens_issued == 1
    (token_request,) = [r for r in github.requests if r.method == "POST"]
    assert token_request.path == "/repos/acme/app/actions/runners/registration-token"
    assert token_request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    # User data installs the runner; the token goes to the host over SSH afterwards.
    script = user_data(cli)
    assert "actions-runner-linux-x64-" in script
    assert REGISTRATION_TOKEN not in script and "github-runner" in script
    (delivered,) = cli.setups
    assert delivered.runner is not None and delivered.runner.token == REGISTRATION_TOKEN
    assert delivered.runner.name == "mapt-demo" and delivered.runner.ephemeral
    assert delivered.runner.labels == ("gpu", "mapt-42")
    # The host stack records which machine got it and the runner's id.
    outputs = host_outputs(cli)
    assert outputs["configured_instance"] == "i-0123456789abcdef0"
    assert (outputs["runner_id"], outputs["runner_scope"]) == (4242, "/repos/acme/app")
    # The token reaches the host only: not the output, the logs or GITHUB_OUTPUT.
    assert "runner-name=mapt-demo" in github_output.read_text().splitlines()
    for text in (result.stdout, result.stderr, github_output.read_text()):
        assert REGISTRATION_TOKEN not in text and ACCESS_TOKEN not in text


def test_the_runner_name_is_in_the_text_output_of_a_dry_run_too(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    result = cli.create("--spot", "--dry-run", *RUNNER)
    assert result.exit_code == 0, result.output
    assert "runner:            mapt-demo" in result.stdout.splitlines()
    assert cli.engine.stack_names() == []


def test_rejected_credentials_stop_create_before_anything_exists(
    cli: Harness, market: SpotMarket, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "b" * 36)
    result = cli.create("--spot", *RUNNER)
    assert result.exit_code == 1
    assert "GitHub rejected the token from GITHUB_TOKEN" in result.stderr
    assert "ghp_" not in result.stderr
    assert cli.engine.stack_names() == []


def test_destroy_deregisters_the_runner_it_registered_by_id_then_destroys(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    # What GitHub holds once the host registered: mapt's runner, and a runner someone
    # registered by hand under the same name (the old scheme's collision).
    github.add_scope("/repos/acme/app", ["other-runner", "mapt-demo", "mapt-demo", "demo"])
    ours, theirs = [r["id"] for r in github.runners["/repos/acme/app"] if r["name"] == "mapt-demo"]
    cli.runner_id = ours  # the id the host's .runner file reports
    assert cli.create("--spot", *RUNNER).exit_code == 0

    result = cli.destroy("--output", "json")  # the scope is in the host stack

    assert result.exit_code == 0, result.output
    expected = f"runner 'mapt-demo' (id {ours}) deregistered from repository acme/app"
    assert json.loads(result.stdout)["runner"] == expected
    remaining = [(r["name"], r["id"]) for r in github.runners["/repos/acme/app"]]
    assert ("mapt-demo", theirs) in remaining and ("demo", github.runner_id(
        "/repos/acme/app", "demo")) in remaining  # fmt: skip
    deletes = [r.path for r in github.requests if r.method == "DELETE"]
    assert deletes == [f"/repos/acme/app/actions/runners/{ours}"]
    assert cli.engine.stack_names() == []


def test_a_create_again_without_the_runner_flags_still_leaves_destroy_the_runner(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    github.add_scope("/repos/acme/app", ["mapt-demo"])
    cli.runner_id = github.runner_id("/repos/acme/app", "mapt-demo")
    assert cli.create("--spot", *RUNNER).exit_code == 0
    assert cli.create("--spot").exit_code == 0  # the same host, brought up to date

    outputs = host_outputs(cli)
    assert (outputs["runner_id"], outputs["runner_scope"]) == (cli.runner_id, "/repos/acme/app")
    result = cli.destroy("--output", "json")
    assert result.exit_code == 0, result.output
    deletes = [r.path for r in github.requests if r.method == "DELETE"]
    assert deletes == [f"/repos/acme/app/actions/runners/{cli.runner_id}"]


def test_destroy_of_a_project_without_state_deletes_no_runner(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    github.add_scope("/repos/acme/app", ["demo", "mapt-demo"])
    before = list(github.runners["/repos/acme/app"])

    result = cli.destroy(*RUNNER, "--output", "json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["nothing_to_destroy"] is True
    assert document["runner"] == (
        "no runner of project 'demo' is recorded in its host stack: none deregistered "
        "from repository acme/app"
    )
    assert github.runners["/repos/acme/app"] == before
    assert [r for r in github.requests if r.method == "DELETE"] == []


def test_destroy_of_a_runner_already_gone_says_so(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    cli.runner_id = 999999  # an ephemeral runner that took its job and left
    assert cli.create("--spot", *RUNNER, "--ghactions-runner-ephemeral").exit_code == 0
    result = cli.destroy()
    assert result.exit_code == 0, result.output
    assert "Runner 'mapt-demo' (id 999999) was no longer registered" in result.stdout
    assert cli.engine.stack_names() == []


def test_destroy_without_credentials_says_so_and_still_destroys(
    cli: Harness, market: SpotMarket, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.create("--spot", *RUNNER).exit_code == 0
    monkeypatch.delenv("GITHUB_TOKEN")
    result = cli.destroy(*RUNNER)
    assert result.exit_code == 0, result.output
    assert "was not deregistered: no GitHub credentials" in result.stdout
    assert cli.engine.stack_names() == []


BAD_APPS = [
    (["--ghactions-app-id", "1", "--ghactions-app-installation-id", "٤",
      "--ghactions-app-private-key", "/nonexistent"],
     "--ghactions-app-installation-id '٤' is not a positive whole number"),
    (["--ghactions-app-id", "1", "--ghactions-app-installation-id", "2",
      "--ghactions-app-private-key", "/nonexistent"],
     "--ghactions-app-private-key '/nonexistent' does not exist"),
    (["--ghactions-app-id", "1"], "go together; missing: --ghactions-app-installation-id"),
    (["--ghactions-app-id", "1", "--ghactions-app-installation-id", "2",
      "--ghactions-app-private-key", ""],
     "--ghactions-app-private-key '' is empty"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("app", "named"), BAD_APPS, ids=["id", "key", "incomplete", "empty-key"]
)
def test_destroy_refuses_the_app_values_create_refuses_and_destroys_nothing(
    cli: Harness, market: SpotMarket, github: FakeGitHub, app: list[str], named: str
) -> None:
    """A typo there would leave the runner registered (its removal never fails)."""
    refused = cli.create("--spot", *RUNNER, *app)
    assert refused.exit_code == 2, refused.output
    assert cli.create("--spot", *RUNNER).exit_code == 0
    before = cli.engine.stack_names()

    result = cli.destroy("--ghactions-runner-org", "acme", *app)

    assert result.exit_code == 2, result.output
    assert result.stderr == refused.stderr and named in result.stderr
    assert cli.engine.stack_names() == before
    assert [r for r in github.requests if r.method == "DELETE"] == []


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--ghactions-runner-repo", "acme/app", "--ghactions-runner-org", "acme"], "'acme'"),
        (["--ghactions-runner-repo", "acme/app/extra"], "'acme/app/extra'"),
        (["--ghactions-runner-labels", "gpu"], "--ghactions-runner-labels"),
        (["--ghactions-runner-repo", "acme/app", "--ghactions-runner-labels", "a b"], "'a b'"),
    ],
)
def test_bad_runner_flags_are_exit_2(
    cli: Harness, market: SpotMarket, github: FakeGitHub, flags: list[str], named: str
) -> None:
    result = cli.create("--spot", *flags)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert cli.engine.stack_names() == [] and github.requests == []


def test_a_runner_token_without_a_repository_is_refused_without_echoing_it(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    result = cli.create("--spot", "--ghactions-runner-token", REGISTRATION_TOKEN)
    assert result.exit_code == 2, result.output
    assert "--ghactions-runner-token applies only with --ghactions-runner-repo" in result.stderr
    assert REGISTRATION_TOKEN not in result.stderr + result.stdout
    assert cli.engine.stack_names() == []


def test_list_says_which_machine_got_the_secrets_and_which_still_waits(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    from mapt.core import OperationError

    assert cli.create("--spot", *RUNNER, project="served").exit_code == 0
    cli.setup_error = OperationError("registering GitHub runner mapt-waiting on host x failed")
    failed = cli.create("--spot", *RUNNER, project="waiting")
    assert failed.exit_code == 1
    assert "registering GitHub runner mapt-waiting" in failed.stderr

    listed = cli.invoke("aws", "host", "list", "--backed-url", cli.backend, "--output", "json")
    hosts = {h["project"]: h for h in json.loads(listed.stdout)["hosts"]}
    assert hosts["served"]["awaited_secrets"] == ["github-runner"]
    assert hosts["served"]["configured_instance"] == "i-0123456789abcdef0"
    assert hosts["waiting"]["awaited_secrets"] == ["github-runner"]
    assert hosts["waiting"]["configured_instance"] is None
    table = cli.invoke("aws", "host", "list", "--backed-url", cli.backend).stdout
    rows = {
        line.split()[1]: line
        for line in table.splitlines()
        if "served" in line or "waiting" in line
    }
    assert "delivered to i-0123456789abcdef0" in rows["served"]
    assert "awaiting" in rows["waiting"]
