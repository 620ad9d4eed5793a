"""Runner scopes, server/API URLs and credentials: validated before anything is created."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mapt.core import ExitCode, InputError, redact
from mapt.integrations.github import (
    AppAuth,
    RunnerScope,
    TokenAuth,
    github_api_url,
    github_server_url,
    resolve_auth,
    scope_from_flags,
)
from tests.integrations.conftest import AppKey

# -- scopes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "owner", "repo"),
    [
        ("redhat-developer/mapt", "redhat-developer", "mapt"),
        ("octo/widget.js", "octo", "widget.js"),
        ("octo_corp/_private-repo", "octo_corp", "_private-repo"),
        ("https://github.com/redhat-developer/mapt", "redhat-developer", "mapt"),
        ("https://github.com/redhat-developer/mapt.git", "redhat-developer", "mapt"),
        ("https://github.com/redhat-developer/mapt/", "redhat-developer", "mapt"),
    ],
)
def test_repo_scope_accepts_owner_repo_and_the_go_mapt_urls(
    value: str, owner: str, repo: str
) -> None:
    scope = RunnerScope.for_repo(value)
    assert (scope.owner, scope.repo, scope.kind) == (owner, repo, "repo")
    assert scope.api_path == f"/repos/{owner}/{repo}"
    assert scope.url() == f"https://github.com/{owner}/{repo}"
    assert str(scope) == f"repository {owner}/{repo}"


@pytest.mark.parametrize(
    "value",
    [
        "a/b/c",
        "octo",
        "octo/",
        "/widget",
        "-octo/widget",
        "octo/wid get",
        "octo/..",
        "octo/w;rm",
        "octo/$(id)",
        "a" * 40 + "/widget",
        "octo/" + "r" * 101,
        "",
        "octo/widget'",
    ],
)
def test_repo_scope_refuses_what_is_not_owner_repo(value: str) -> None:
    with pytest.raises(InputError) as caught:
        RunnerScope.for_repo(value)
    assert str(caught.value).startswith(f"--ghactions-runner-repo {value!r} is not OWNER/REPO")
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


def test_org_scope() -> None:
    scope = RunnerScope.for_org("redhat-developer")
    assert (scope.owner, scope.repo, scope.kind) == ("redhat-developer", None, "org")
    assert scope.api_path == "/orgs/redhat-developer"
    assert scope.url("https://ghe.example.com/") == "https://ghe.example.com/redhat-developer"
    assert RunnerScope.for_org("https://github.com/redhat-developer") == scope


@pytest.mark.parametrize("value", ["octo/widget", "-octo", "octo org", "o" * 40, "octo`id`"])
def test_org_scope_refuses_bad_names(value: str) -> None:
    with pytest.raises(InputError, match=r"^--ghactions-runner-org .* is not a GitHub org"):
        RunnerScope.for_org(value)


def test_a_url_on_another_server_is_refused_unless_that_server_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "https://ghe.example.com/octo/widget"
    with pytest.raises(InputError) as caught:
        RunnerScope.for_repo(url)
    assert str(caught.value) == (
        f"--ghactions-runner-repo {url!r} is not on the GitHub server https://github.com. "
        "For GitHub Enterprise, set GITHUB_SERVER_URL (and GITHUB_API_URL) to it."
    )
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://ghe.example.com")
    assert RunnerScope.for_repo(url).slug == "octo/widget"


def test_the_constructor_checks_names_too() -> None:
    with pytest.raises(InputError, match="GitHub owner name 'a b' is not valid"):
        RunnerScope(owner="a b", repo="x")
    with pytest.raises(InputError, match="GitHub repository name 'x;y' is not valid"):
        RunnerScope(owner="octo", repo="x;y")
    with pytest.raises(InputError, match="GitHub organization name"):
        RunnerScope(owner="")


def test_flags_are_mutually_exclusive_and_one_is_needed() -> None:
    assert scope_from_flags("octo/widget", None) == RunnerScope("octo", "widget")
    assert scope_from_flags(None, "octo-org") == RunnerScope("octo-org")
    assert scope_from_flags("", "octo-org") == RunnerScope("octo-org")  # empty MAPT_* var
    with pytest.raises(InputError) as both:
        scope_from_flags("octo/widget", "octo-org")
    assert str(both.value) == (
        "--ghactions-runner-repo 'octo/widget' and --ghactions-runner-org 'octo-org' are "
        "mutually exclusive: a runner belongs to a repository or to an organization"
    )
    with pytest.raises(InputError, match="mutually exclusive") as neither:
        scope_from_flags(None, "")
    assert "needs --ghactions-runner-repo OWNER/REPO or --ghactions-runner-org ORG" in str(
        neither.value
    )


# -- server and API URLs --------------------------------------------------------------


def test_default_urls_are_githubs() -> None:
    assert github_server_url(env={}) == "https://github.com"
    assert github_api_url(env={}) == "https://api.github.com"


@pytest.mark.parametrize(
    ("env", "api"),
    [
        ({"GITHUB_API_URL": "https://ghe.example.com/api/v3/"}, "https://ghe.example.com/api/v3"),
        ({"GITHUB_SERVER_URL": "https://ghe.example.com"}, "https://ghe.example.com/api/v3"),
        ({"GITHUB_SERVER_URL": "https://octo.ghe.com"}, "https://api.octo.ghe.com"),
        ({"GITHUB_SERVER_URL": "https://github.com"}, "https://api.github.com"),
    ],
)
def test_api_url_follows_the_environment(env: dict[str, str], api: str) -> None:
    # An Enterprise server's token must never be sent to api.github.com by default.
    assert github_api_url(env=env) == api


@pytest.mark.parametrize("value", ["github.com", "ftp://github.com", "https://gh.com/'x", ""])
def test_bad_server_urls_are_refused(value: str) -> None:
    env = {"GITHUB_SERVER_URL": value} if value else {"GITHUB_SERVER_URL": "https://a b"}
    with pytest.raises(InputError, match=r"GITHUB_SERVER_URL .* is not the http"):
        github_server_url(env=env)
    with pytest.raises(InputError, match="GITHUB_API_URL 'api' is not the http"):
        github_api_url(env={"GITHUB_API_URL": "api"})


# -- credentials ----------------------------------------------------------------------


def test_nothing_available_resolves_to_none() -> None:
    assert resolve_auth(env={}) is None
    assert resolve_auth(token="", app_id="", env={"GITHUB_TOKEN": " "}) is None


def test_token_from_the_environment_github_token_first() -> None:
    auth = resolve_auth(env={"GITHUB_TOKEN": "ghp_fromGithubToken1", "GH_TOKEN": "ghp_fromGh"})
    assert isinstance(auth, TokenAuth)
    assert (auth.token, auth.source) == ("ghp_fromGithubToken1", "GITHUB_TOKEN")
    auth = resolve_auth(env={"GH_TOKEN": "ghp_fromGhToken22"})
    assert isinstance(auth, TokenAuth) and auth.source == "GH_TOKEN"
    explicit = resolve_auth(token="ghp_explicit333", token_source="--x", env={"GH_TOKEN": "y"})
    assert isinstance(explicit, TokenAuth) and explicit.source == "--x"
    # Tokens are secrets once known, and repr never shows them.
    assert redact("ghp_fromGithubToken1") == "***"
    assert "ghp_explicit333" not in repr(explicit)


def test_a_token_with_spaces_is_refused_without_showing_it() -> None:
    with pytest.raises(InputError) as caught:
        TokenAuth("ghp_abc def", source="GITHUB_TOKEN")
    assert "GITHUB_TOKEN" in str(caught.value) and "ghp_abc" not in str(caught.value)


def test_app_flags_win_and_go_together(app_key_file: Path) -> None:
    env = {"GITHUB_TOKEN": "ghp_ignoredWhenAnAppIsGiven"}
    auth = resolve_auth(
        app_id="123", installation_id=" 456", private_key_path=str(app_key_file), env=env
    )
    assert isinstance(auth, AppAuth)
    assert (auth.app_id, auth.installation_id, auth.private_key_path) == (123, 456, app_key_file)
    assert "PRIVATE KEY" not in repr(auth)
    with pytest.raises(InputError) as caught:
        resolve_auth(app_id="123", private_key_path=str(app_key_file))
    assert str(caught.value) == (
        "--ghactions-app-id, --ghactions-app-installation-id, --ghactions-app-private-key go "
        "together; missing: --ghactions-app-installation-id"
    )


def test_without_app_flags_the_app_comes_from_its_mapt_variables(app_key_file: Path) -> None:
    # How `mapt serve` is handed its own App: the variables of the CLI's flags.
    env = {
        "MAPT_GHACTIONS_APP_ID": "77",
        "MAPT_GHACTIONS_APP_INSTALLATION_ID": "88",
        "MAPT_GHACTIONS_APP_PRIVATE_KEY": str(app_key_file),
        "GITHUB_TOKEN": "ghp_ignoredWhenAnAppIsGiven",
    }
    auth = resolve_auth(env=env)
    assert isinstance(auth, AppAuth) and (auth.app_id, auth.installation_id) == (77, 88)
    flags = resolve_auth(
        app_id="1", installation_id="2", private_key_path=str(app_key_file), env=env
    )
    assert isinstance(flags, AppAuth) and (flags.app_id, flags.installation_id) == (1, 2)
    with pytest.raises(InputError) as caught:
        resolve_auth(env={"MAPT_GHACTIONS_APP_ID": "77", "GITHUB_TOKEN": "ghp_x"})
    assert str(caught.value).endswith(
        "missing: MAPT_GHACTIONS_APP_INSTALLATION_ID, MAPT_GHACTIONS_APP_PRIVATE_KEY"
    )
    with pytest.raises(InputError, match="MAPT_GHACTIONS_APP_ID 'x7' is not a positive"):
        resolve_auth(env={**env, "MAPT_GHACTIONS_APP_ID": "x7"})


@pytest.mark.parametrize(
    ("app_id", "installation_id", "bad"),
    [
        ("abc", "1", "--ghactions-app-id 'abc'"),
        ("1", "-5", "--ghactions-app-installation-id '-5'"),
        ("1", "0", "--ghactions-app-installation-id 0"),
        ("1.5", "2", "--ghactions-app-id '1.5'"),
    ],
)
def test_app_ids_are_positive_whole_numbers(
    app_key_file: Path, app_id: str, installation_id: str, bad: str
) -> None:
    with pytest.raises(InputError) as caught:
        resolve_auth(app_id=app_id, installation_id=installation_id, private_key_path=app_key_file)
    assert str(caught.value) == f"{bad} is not a positive whole number"


def test_key_file_problems_name_the_path_never_the_key(tmp_path: Path, app_key: AppKey) -> None:
    public = tmp_path / "public.pem"
    public.write_bytes(app_key.public_pem)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n"
    )
    binary = tmp_path / "key.der"
    binary.write_bytes(b"\x30\x82\xff\xfe")
    cases = {
        tmp_path / "missing.pem": "does not exist",
        tmp_path: "is a directory",
        public: "is not an unencrypted RSA private key in PEM format",
        garbage: "is not an unencrypted RSA private key in PEM format",
        binary: "is not a PEM file",
    }
    if os.geteuid() != 0:  # root reads any file
        unreadable = tmp_path / "unreadable.pem"
        unreadable.write_bytes(app_key.private_pem)
        unreadable.chmod(0)
        cases[unreadable] = "cannot be read (permission denied)"
    for path, expected in cases.items():
        with pytest.raises(InputError) as caught:
            AppAuth(app_id=1, installation_id=2, private_key_path=path)
        text = str(caught.value)
        assert text.startswith(f"--ghactions-app-private-key {str(path)!r} {expected}"), text
        assert "BEGIN" not in text and "not a key" not in text


def test_an_encrypted_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "encrypted.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(InputError, match="is not an unencrypted RSA private key"):
        AppAuth(app_id=1, installation_id=2, private_key_path=path)


def test_app_jwt_claims(app_key_file: Path, app_key: AppKey) -> None:
    import jwt

    auth = AppAuth(app_id=42, installation_id=7, private_key_path=app_key_file)
    token = auth.app_jwt(now=1_700_000_000)
    claims = jwt.decode(
        token, app_key.public_pem, algorithms=["RS256"], options={"verify_exp": False}
    )
    assert claims == {"iat": 1_700_000_000 - 60, "exp": 1_700_000_000 + 540, "iss": "42"}
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


# -- what tests and the CLI rely on -----------------------------------------------------


def test_importing_the_package_loads_neither_httpx_nor_jwt() -> None:
    code = (
        "import sys, mapt.integrations, mapt.integrations.github\n"
        "print(','.join(m for m in ('httpx', 'jwt', 'cryptography') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_the_loopback_fence_refuses_github() -> None:
    with pytest.raises(AssertionError, match=r"outside 127\.0\.0\.0/8"):
        socket.getaddrinfo("api.github.com", 443)
