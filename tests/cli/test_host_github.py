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
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE_VALUE = "1b47061264138c4ac30d75fd1eb44270"
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
    wrapped = template.inputs["userData"]
    # The engine received it as a secret (Pulumi's secret signature), so it is encrypted
    # in state and masked in Pulumi's own output.
    assert wrapped[SECRET_SIGNATURE] == SECRET_SIGNATURE_VALUE
    return base64.b64decode(wrapped["value"]).decode()


def test_create_registers_a_runner_named_after_the_project(
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
    assert json.loads(result.stdout)["runner_name"] == "demo"
    assert github.registration_tokens_issued == 1
    (token_request,) = [r for r in github.requests if r.method == "POST"]
    assert token_request.path == "/repos/acme/app/actions/runners/registration-token"
    assert token_request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    script = user_data(cli)
    assert "https://github.com/acme/app" in script and "--ephemeral" in script
    assert "gpu,mapt-42" in script and REGISTRATION_TOKEN in script
    assert "actions-runner-linux-x64-" in script
    # The token reaches the host only: not the output, the logs or GITHUB_OUTPUT.
    assert "runner-name=demo" in github_output.read_text().splitlines()
    for text in (result.stdout, result.stderr, github_output.read_text()):
        assert REGISTRATION_TOKEN not in text and ACCESS_TOKEN not in text


def test_the_runner_name_is_in_the_text_output_of_a_dry_run_too(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    result = cli.create("--spot", "--dry-run", *RUNNER)
    assert result.exit_code == 0, result.output
    assert "runner:            demo" in result.stdout.splitlines()
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


def test_destroy_deregisters_the_runner_then_destroys(
    cli: Harness, market: SpotMarket, github: FakeGitHub
) -> None:
    assert cli.create("--spot", *RUNNER).exit_code == 0
    github.add_scope("/repos/acme/app", ["other-runner", "demo"])  # it came online
    demo_id = github.runner_id("/repos/acme/app", "demo")

    result = cli.destroy(*RUNNER, "--output", "json")

    assert result.exit_code == 0, result.output
    expected = "runner 'demo' deregistered from repository acme/app"
    assert json.loads(result.stdout)["runner"] == expected
    assert [r["name"] for r in github.runners["/repos/acme/app"]] == ["other-runner"]
    deletes = [r.path for r in github.requests if r.method == "DELETE"]
    assert deletes == [f"/repos/acme/app/actions/runners/{demo_id}"]
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
