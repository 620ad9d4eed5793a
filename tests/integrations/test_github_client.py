"""GitHubClient against a real HTTP server on 127.0.0.1 playing GitHub's REST API."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

import mapt
from mapt.core import ExitCode, InputError, MaptError, redact
from mapt.integrations.github import (
    AppAuth,
    GitHubApiError,
    GitHubClient,
    GitHubCredentialsError,
    GitHubPermissionError,
    GitHubUnreachableError,
    RunnerScope,
    TokenAuth,
    obtain_registration_token,
)
from tests.integrations.conftest import AppKey
from tests.integrations.fake_github import (
    REGISTRATION_TOKEN,
    FakeGitHub,
    FakeGitHubServer,
)

PAT = "ghp_patTokenForTests0123456789abcdef"
REPO = RunnerScope.for_repo("octo/widget")
ORG = RunnerScope.for_org("octo-org")


@pytest.fixture
def known(fake_github: FakeGitHub) -> FakeGitHub:
    """GitHub with one repository and one organization, and the PAT accepted."""
    fake_github.tokens.add(PAT)
    fake_github.add_scope("/repos/octo/widget")
    fake_github.add_scope("/orgs/octo-org")
    return fake_github


def client(server: FakeGitHubServer, token: str = PAT) -> GitHubClient:
    return GitHubClient(TokenAuth(token, source="GITHUB_TOKEN"), api_url=server.api_url)


def assert_one_line_without(error: BaseException, *secrets: str) -> str:
    text = str(error)
    assert "\n" not in text
    for secret in secrets:
        assert secret not in text
    return text


# -- registration tokens ------------------------------------------------------------


def test_registration_token_for_a_repository(github: FakeGitHubServer, known: FakeGitHub) -> None:
    with client(github) as api:
        token = api.registration_token(REPO)

    assert token == REGISTRATION_TOKEN
    [request] = known.requests
    assert request.method == "POST"
    assert request.path == "/repos/octo/widget/actions/runners/registration-token"
    assert request.headers["authorization"] == f"Bearer {PAT}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["user-agent"] == f"mapt/{mapt.__version__}"
    assert request.body == b""
    # Both tokens are secrets from now on: no log line can show them.
    assert redact(f"{token} {PAT}") == "*** ***"


def test_registration_token_for_an_organization(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    with client(github) as api:
        assert api.registration_token(ORG) == REGISTRATION_TOKEN
    assert [(r.method, r.path) for r in known.requests] == [
        ("POST", "/orgs/octo-org/actions/runners/registration-token")
    ]


def test_github_api_url_from_the_environment_is_used(
    github: FakeGitHubServer, known: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_API_URL", github.api_url + "/")
    with GitHubClient(TokenAuth(PAT)) as api:
        assert api.api_url == github.api_url
        assert api.registration_token(REPO) == REGISTRATION_TOKEN
    assert len(known.requests) == 1


def test_an_enterprise_server_api_path_prefix_is_kept() -> None:
    fake = FakeGitHub(prefix="/api/v3")
    fake.tokens.add(PAT)
    fake.add_scope("/repos/octo/widget", ["mapt-demo"])
    with FakeGitHubServer(fake) as server, client(server) as api:
        assert server.api_url.endswith("/api/v3")
        assert api.registration_token(REPO) == REGISTRATION_TOKEN
        assert api.remove_runner(REPO, "mapt-demo") is True
    assert [r.path for r in fake.requests] == [
        "/api/v3/repos/octo/widget/actions/runners/registration-token",
        "/api/v3/repos/octo/widget/actions/runners",
        f"/api/v3/repos/octo/widget/actions/runners/{1000}",
    ]


# -- removing runners ---------------------------------------------------------------


def test_remove_runner_finds_it_on_the_second_page(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    known.add_scope("/repos/octo/widget", ["build-1", "build-2", "mapt-demo", "build-3"])
    known.page_size = 2  # GitHub would page at 100; two pages of two show the paging
    target = known.runner_id("/repos/octo/widget", "mapt-demo")

    with client(github) as api:
        assert api.remove_runner(REPO, "mapt-demo") is True

    calls = [(r.method, r.path, r.query) for r in known.requests]
    assert calls == [
        ("GET", "/repos/octo/widget/actions/runners", {"per_page": ["100"]}),
        ("GET", "/repos/octo/widget/actions/runners", {"per_page": ["2"], "page": ["2"]}),
        ("DELETE", f"/repos/octo/widget/actions/runners/{target}", {}),
    ]
    assert all(r.headers["authorization"] == f"Bearer {PAT}" for r in known.requests)
    remaining = [r["name"] for r in known.runners["/repos/octo/widget"]]
    assert remaining == ["build-1", "build-2", "build-3"]


def test_remove_runner_in_an_organization(github: FakeGitHubServer, known: FakeGitHub) -> None:
    known.add_scope("/orgs/octo-org", ["mapt-demo"])
    with client(github) as api:
        assert api.remove_runner(ORG, "mapt-demo") is True
    assert known.runners["/orgs/octo-org"] == []
    assert known.requests[-1].method == "DELETE"
    assert known.requests[-1].path.startswith("/orgs/octo-org/actions/runners/")


def test_remove_runner_matches_the_exact_name_only(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    known.add_scope("/repos/octo/widget", ["mapt-demo-2", "xmapt-demo", "mapt-dem"])
    known.page_size = 2
    with client(github) as api:
        assert api.remove_runner(REPO, "mapt-demo") is False
    assert [r.method for r in known.requests] == ["GET", "GET"]  # every page, no DELETE
    assert len(known.runners["/repos/octo/widget"]) == 3


def test_a_runner_gone_between_listing_and_removal_counts_as_removed(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    known.add_scope("/repos/octo/widget", ["mapt-demo"])
    runner_id = known.runner_id("/repos/octo/widget", "mapt-demo")
    known.answer(
        "DELETE", f"/repos/octo/widget/actions/runners/{runner_id}", 404, {"message": "Not Found"}
    )
    with client(github) as api:
        assert api.remove_runner(REPO, "mapt-demo") is True


def test_remove_runner_by_id_touches_that_runner_only(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    known.add_scope("/repos/octo/widget", ["mapt-demo", "mapt-demo", "other"])
    ours, theirs = (r["id"] for r in known.runners["/repos/octo/widget"][:2])
    with client(github) as api:
        assert api.remove_runner_by_id(REPO, ours, name="mapt-demo") is True
        assert api.remove_runner_by_id(REPO, ours) is False  # already gone: no error
    remaining = [r["id"] for r in known.runners["/repos/octo/widget"]]
    assert ours not in remaining and theirs in remaining
    assert [(r.method, r.path) for r in known.requests] == [
        ("DELETE", f"/repos/octo/widget/actions/runners/{ours}"),
        ("DELETE", f"/repos/octo/widget/actions/runners/{ours}"),
    ]  # no listing: the id is what it removes


def test_a_scope_reads_back_from_its_api_path() -> None:
    assert RunnerScope.from_api_path(REPO.api_path) == REPO
    assert RunnerScope.from_api_path(ORG.api_path) == ORG
    for bad in ("/repos/octo", "/users/octo", "", "/repos/a/b/c"):
        with pytest.raises(InputError, match="is not /repos/OWNER/REPO or /orgs/ORG"):
            RunnerScope.from_api_path(bad)


def test_a_next_page_link_to_another_host_is_not_followed(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    known.answer(
        "GET",
        "/repos/octo/widget/actions/runners",
        200,
        {"total_count": 200, "runners": []},
        Link='<http://127.0.0.2:9/steal?page=2>; rel="next"',
    )
    with client(github) as api, pytest.raises(GitHubApiError, match="another host"):
        api.remove_runner(REPO, "mapt-demo")
    assert len(known.requests) == 1


# -- errors -------------------------------------------------------------------------


def test_rejected_token_says_which_token_and_never_shows_it(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    wrong = "ghp_wrongTokenNotKnownToGitHub000000"
    with client(github, token=wrong) as api, pytest.raises(GitHubCredentialsError) as caught:
        api.registration_token(REPO)
    text = assert_one_line_without(caught.value, wrong, PAT)
    assert "GitHub rejected the token from GITHUB_TOKEN (HTTP 401)" in text
    assert "repository octo/widget" in text
    assert caught.value.exit_code == ExitCode.FAILED and caught.value.status == 401


@pytest.mark.parametrize(
    ("scope", "status", "expected"),
    [
        (REPO, 403, "repository permission 'Administration: write'"),
        (REPO, 404, "repository permission 'Administration: write'"),
        (ORG, 403, "organization permission 'Self-hosted runners: write'"),
        (ORG, 404, "organization permission 'Self-hosted runners: write'"),
    ],
)
def test_forbidden_or_not_found_names_the_scope_and_the_permission(
    github: FakeGitHubServer, known: FakeGitHub, scope: RunnerScope, status: int, expected: str
) -> None:
    known.answer(
        "POST",
        f"{scope.api_path}/actions/runners/registration-token",
        status,
        {"message": "Resource not accessible by personal access token"},
    )
    with client(github) as api, pytest.raises(GitHubPermissionError) as caught:
        api.registration_token(scope)
    text = assert_one_line_without(caught.value, PAT)
    assert f"{scope} was not found, or the token from GITHUB_TOKEN may not manage" in text
    assert f"(HTTP {status})" in text
    assert expected in text
    assert ("admin:org" if scope.kind == "org" else "the repo scope") in text


def test_an_unknown_repository_is_a_permission_error(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    with client(github) as api, pytest.raises(GitHubPermissionError, match="octo/missing"):
        api.remove_runner(RunnerScope.for_repo("octo/missing"), "mapt-demo")


def test_422_passes_githubs_message_on(github: FakeGitHubServer, known: FakeGitHub) -> None:
    known.add_scope("/repos/octo/widget", ["mapt-demo"])
    runner_id = known.runner_id("/repos/octo/widget", "mapt-demo")
    known.answer(
        "DELETE",
        f"/repos/octo/widget/actions/runners/{runner_id}",
        422,
        {"message": 'Bad request - Runner "mapt-demo" is still running a job"'},
    )
    with client(github) as api, pytest.raises(GitHubApiError) as caught:
        api.remove_runner(REPO, "mapt-demo")
    text = assert_one_line_without(caught.value, PAT)
    assert text == (
        "GitHub refused to remove runner mapt-demo from repository octo/widget (HTTP 422): "
        'Bad request - Runner "mapt-demo" is still running a job"'
    )
    assert caught.value.status == 422


@pytest.mark.parametrize("status", [401, 403, 404, 422, 500])
def test_no_error_message_contains_a_token_even_if_github_echoes_it(
    github: FakeGitHubServer, known: FakeGitHub, status: int
) -> None:
    known.answer(
        "POST",
        "/repos/octo/widget/actions/runners/registration-token",
        status,
        {"message": f"token {PAT} and {REGISTRATION_TOKEN}\nsecond line"},
    )
    TokenAuth(REGISTRATION_TOKEN)  # a registration token seen earlier is a secret too
    with client(github) as api, pytest.raises(GitHubApiError) as caught:
        api.registration_token(REPO)
    assert_one_line_without(caught.value, PAT, REGISTRATION_TOKEN)
    assert f"HTTP {status}" in str(caught.value)


def test_rate_limit_is_reported_as_such(github: FakeGitHubServer, known: FakeGitHub) -> None:
    known.answer(
        "POST",
        "/repos/octo/widget/actions/runners/registration-token",
        403,
        {"message": "API rate limit exceeded for user ID 1."},
        **{"X-RateLimit-Remaining": "0"},
    )
    with client(github) as api, pytest.raises(GitHubApiError, match="rate limit") as caught:
        api.registration_token(REPO)
    assert not isinstance(caught.value, GitHubPermissionError)


def test_an_unreachable_api_names_the_url(closed_port_url: str) -> None:
    api = GitHubClient(TokenAuth(PAT), api_url=closed_port_url)
    with api, pytest.raises(GitHubUnreachableError) as caught:
        api.registration_token(REPO)
    text = assert_one_line_without(caught.value, PAT)
    assert f"the GitHub API at {closed_port_url} could not be reached" in text
    assert "create a runner registration token for repository octo/widget" in text


def test_a_garbled_success_answer_is_an_error(github: FakeGitHubServer, known: FakeGitHub) -> None:
    known.answer("POST", "/repos/octo/widget/actions/runners/registration-token", 201, {"tok": "x"})
    with client(github) as api, pytest.raises(GitHubApiError, match="has no 'token'"):
        api.registration_token(REPO)


# -- GitHub App ---------------------------------------------------------------------


def test_app_jwt_is_verified_then_exchanged_and_the_installation_token_reused(
    github: FakeGitHubServer, known: FakeGitHub, app_key: AppKey, app_key_file: Path
) -> None:
    app = known.add_app(app_id=1234, installation_id=5678, public_key_pem=app_key.public_pem)
    auth = AppAuth(app_id=1234, installation_id=5678, private_key_path=app_key_file)
    before = int(time.time())

    with GitHubClient(auth, api_url=github.api_url) as api:
        assert api.registration_token(REPO) == REGISTRATION_TOKEN
        assert api.registration_token(ORG) == REGISTRATION_TOKEN

    exchange, first, second = known.requests
    assert (exchange.method, exchange.path) == ("POST", "/app/installations/5678/access_tokens")
    assert exchange.headers["accept"] == "application/vnd.github+json"
    assert exchange.headers["x-github-api-version"] == "2022-11-28"
    [claims] = app.jwt_claims  # the server verified the signature with the public key
    assert claims["iss"] == "1234"
    assert before - 61 <= claims["iat"] <= int(time.time()) - 59
    assert claims["exp"] - claims["iat"] == 600
    [installation_token] = app.issued_tokens
    assert first.headers["authorization"] == f"Bearer {installation_token}"
    assert second.headers["authorization"] == f"Bearer {installation_token}"
    assert first.path == "/repos/octo/widget/actions/runners/registration-token"
    assert second.path == "/orgs/octo-org/actions/runners/registration-token"
    assert redact(installation_token) == "***"
    signed = exchange.headers["authorization"].removeprefix("Bearer ")
    assert jwt.decode(signed, app_key.public_pem, algorithms=["RS256"])["iss"] == "1234"
    assert redact(signed) == "***"


def test_app_signed_with_a_key_github_does_not_know_is_rejected_clearly(
    github: FakeGitHubServer,
    known: FakeGitHub,
    app_key: AppKey,
    other_key: AppKey,
    tmp_path: Path,
) -> None:
    known.add_app(app_id=1234, installation_id=5678, public_key_pem=app_key.public_pem)
    wrong = tmp_path / "old-key.pem"
    wrong.write_bytes(other_key.private_pem)
    auth = AppAuth(app_id=1234, installation_id=5678, private_key_path=wrong)

    api = GitHubClient(auth, api_url=github.api_url)
    with api, pytest.raises(GitHubCredentialsError) as caught:
        api.registration_token(REPO)

    text = assert_one_line_without(caught.value, other_key.private_pem.decode().splitlines()[1])
    assert text.startswith("GitHub rejected GitHub App 1234 (installation 5678) (HTTP 401)")
    assert "--ghactions-app-private-key" in text
    assert [r.path for r in known.requests] == ["/app/installations/5678/access_tokens"]


def test_app_with_an_unknown_installation_names_it(
    github: FakeGitHubServer, known: FakeGitHub, app_key: AppKey, app_key_file: Path
) -> None:
    known.add_app(app_id=1234, installation_id=5678, public_key_pem=app_key.public_pem)
    auth = AppAuth(app_id=1234, installation_id=999, private_key_path=app_key_file)
    api = GitHubClient(auth, api_url=github.api_url)
    with api, pytest.raises(GitHubPermissionError) as caught:
        api.remove_runner(REPO, "mapt-demo")
    assert "GitHub has no installation 999 of GitHub App 1234 (HTTP 404)" in str(caught.value)


# -- choosing how to get a registration token ----------------------------------------


def test_a_given_registration_token_is_used_as_is_without_calling_github(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    given = "AGIVENREGISTRATIONTOKEN000001"
    for auth in (None, TokenAuth(PAT)):
        token = obtain_registration_token(
            REPO, given_token=given, auth=auth, api_url=github.api_url
        )
        assert token == given
    assert known.requests == []
    assert redact(given) == "***"


def test_a_plain_token_mints_a_registration_token(
    github: FakeGitHubServer, known: FakeGitHub
) -> None:
    token = obtain_registration_token(REPO, auth=TokenAuth(PAT), api_url=github.api_url)
    assert token == REGISTRATION_TOKEN
    assert known.registration_tokens_issued == 1


def test_an_app_wins_over_a_given_registration_token(
    github: FakeGitHubServer, known: FakeGitHub, app_key: AppKey, app_key_file: Path
) -> None:
    known.add_app(app_id=1234, installation_id=5678, public_key_pem=app_key.public_pem)
    auth = AppAuth(app_id=1234, installation_id=5678, private_key_path=app_key_file)
    token = obtain_registration_token(
        REPO, given_token="AGIVENTOKEN", auth=auth, api_url=github.api_url
    )
    assert token == REGISTRATION_TOKEN
    assert known.registration_tokens_issued == 1


def test_no_credentials_at_all_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        obtain_registration_token(REPO)
    assert "registering a runner for repository octo/widget needs GitHub credentials" in str(
        caught.value
    )
    assert caught.value.exit_code == ExitCode.USAGE


def test_every_github_error_is_a_mapt_operation_error() -> None:
    for error in (GitHubCredentialsError, GitHubPermissionError, GitHubUnreachableError):
        assert issubclass(error, GitHubApiError)
        assert issubclass(error, MaptError)
        assert error.exit_code == ExitCode.FAILED
