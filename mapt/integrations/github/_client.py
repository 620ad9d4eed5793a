"""A small client for the GitHub REST API calls mapt needs: runner tokens and removal.

Two calls matter: minting a runner registration token (so a new host can register
itself) and removing a runner by the id its registration got (so ``destroy`` does not
leave an offline runner behind, the Go mapt's issue 341, and never removes a runner
mapt did not register). Each failure becomes a ``GitHubApiError`` whose one
line says what to fix (which credentials, which scope, which permission) and never
contains a token.

``httpx`` is imported when the first request is made, so importing this package (which
the CLI does to validate flags) stays cheap.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import mapt
from mapt.core import InputError, get_logger, redact, register_secret
from mapt.integrations.github._auth import AppAuth, GitHubAuth, TokenAuth
from mapt.integrations.github._errors import (
    GitHubApiError,
    GitHubCredentialsError,
    GitHubPermissionError,
    GitHubUnreachableError,
)
from mapt.integrations.github._scope import RunnerScope, github_api_url

if TYPE_CHECKING:
    import httpx

log = get_logger(__name__)

API_VERSION = "2022-11-28"
DEFAULT_TIMEOUT = 30.0
# GitHub's largest page; a scope holds at most 10,000 runners, so 100 pages is a loop.
_PER_PAGE = 100
_MAX_PAGES = 100
# Installation tokens live one hour; renew well before GitHub expires them.
_INSTALLATION_TOKEN_REUSE_SECONDS = 50 * 60
_MAX_MESSAGE_CHARS = 300


class GitHubClient:
    """Calls GitHub's REST API with ``auth``; use it as a context manager or ``close()`` it.

    ``api_url`` defaults to ``GITHUB_API_URL`` (set in GitHub Actions), else the API of
    ``GITHUB_SERVER_URL``, else ``https://api.github.com``; GitHub Enterprise Server is
    ``https://HOST/api/v3``. A GitHub App's installation token is obtained on the first
    call and reused for 50 minutes.
    """

    def __init__(
        self, auth: GitHubAuth, api_url: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.auth = auth
        self.api_url = github_api_url(api_url)
        self.timeout = timeout
        self._http: httpx.Client | None = None
        self._installation_token: tuple[str, float] | None = None

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def registration_token(self, scope: RunnerScope) -> str:
        """A new runner registration token for ``scope`` (valid one hour, registered secret)."""
        action = f"create a runner registration token for {scope}"
        response = self._request(
            "POST", f"{scope.api_path}/actions/runners/registration-token", action, scope
        )
        token = _json_field(response, "token", action)
        register_secret(token)
        log.info("GitHub issued a runner registration token for %s", scope)
        return token

    def remove_runner(self, scope: RunnerScope, name: str) -> bool:
        """Remove the runner called exactly ``name`` from ``scope``; False if there is none.

        A runner that disappears between the listing and the removal (an ephemeral
        runner deregistering itself) counts as removed.
        """
        runner_id = self._find_runner(scope, name)
        if runner_id is None:
            log.info("no runner named %s is registered in %s", name, scope)
            return False
        self.remove_runner_by_id(scope, runner_id, name=name)
        return True

    def remove_runner_by_id(
        self, scope: RunnerScope, runner_id: int, *, name: str | None = None
    ) -> bool:
        """Remove runner ``runner_id`` from ``scope``; False if GitHub no longer has it.

        The id is the one a registration returned, so this can only remove that
        runner, never another one that happens to have the same name.
        """
        label = f"{name} (id {runner_id})" if name else str(runner_id)
        action = f"remove runner {name or runner_id} from {scope}"
        path = f"{scope.api_path}/actions/runners/{runner_id}"
        response = self._request("DELETE", path, action, scope, ok_statuses=(404,))
        if response.status_code == 404:
            log.info("runner %s is no longer registered in %s", label, scope)
            return False
        log.info("removed runner %s from %s", label, scope)
        return True

    def _find_runner(self, scope: RunnerScope, name: str) -> int | None:
        action = f"list the runners of {scope}"
        url: str | None = f"{scope.api_path}/actions/runners?per_page={_PER_PAGE}"
        for _ in range(_MAX_PAGES):
            if url is None:
                return None
            response = self._request("GET", url, action, scope)
            runners = _json(response, action).get("runners")
            if not isinstance(runners, list):
                raise GitHubApiError(f"GitHub's answer to '{action}' has no runner list")
            for runner in runners:
                if isinstance(runner, dict) and runner.get("name") == name:
                    runner_id = runner.get("id")
                    if isinstance(runner_id, int) and not isinstance(runner_id, bool):
                        return runner_id
            url = self._next_page(response, action)
        raise GitHubApiError(f"GitHub kept paging after {_MAX_PAGES} pages trying to {action}")

    def _next_page(self, response: httpx.Response, action: str) -> str | None:
        """The ``rel="next"`` link, refused if it leaves the API's origin (it carries auth)."""
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        if _origin(link) != _origin(self.api_url):
            raise GitHubApiError(
                f"GitHub's next-page link for '{action}' points to another host "
                f"({_origin(link)}); not sending credentials there"
            )
        return link

    def _bearer(self) -> str:
        auth = self.auth
        if isinstance(auth, TokenAuth):
            return auth.token
        cached = self._installation_token
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        token = self._exchange_app_token(auth)
        self._installation_token = (token, time.monotonic() + _INSTALLATION_TOKEN_REUSE_SECONDS)
        return token

    def _exchange_app_token(self, auth: AppAuth) -> str:
        action = f"get an installation access token for {auth.describe()}"
        response = self._send(
            "POST",
            f"/app/installations/{auth.installation_id}/access_tokens",
            action,
            bearer=auth.app_jwt(),
        )
        if response.status_code == 404:
            raise GitHubPermissionError(
                f"GitHub has no installation {auth.installation_id} of GitHub App "
                f"{auth.app_id} (HTTP 404)",
                hint="Check --ghactions-app-installation-id: it is in the URL of the App's "
                "installation settings page.",
                status=404,
            )
        _raise_for_status(response, action, None, auth)
        token = _json_field(response, "token", action)
        register_secret(token)
        log.debug("obtained an installation access token for %s", auth.describe())
        return token

    def _request(
        self,
        method: str,
        url: str,
        action: str,
        scope: RunnerScope,
        *,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        response = self._send(method, url, action, bearer=self._bearer())
        if response.status_code not in ok_statuses:
            _raise_for_status(response, action, scope, self.auth)
        return response

    def _send(self, method: str, url: str, action: str, *, bearer: str) -> httpx.Response:
        import httpx

        if self._http is None:
            self._http = httpx.Client(
                base_url=self.api_url + "/",
                timeout=self.timeout,
                follow_redirects=True,
                headers={
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": API_VERSION,
                    "User-Agent": f"mapt/{mapt.__version__}",
                },
            )
        if url.startswith("/"):
            url = url[1:]  # relative to the API base, which may have a path (/api/v3)
        try:
            response = self._http.request(
                method, url, headers={"Authorization": f"Bearer {bearer}"}
            )
        except httpx.TimeoutException:
            raise GitHubUnreachableError(
                f"the GitHub API at {self.api_url} did not answer within {self.timeout:g} s "
                f"while trying to {action}"
            ) from None
        except httpx.TransportError as exc:
            raise GitHubUnreachableError(
                f"the GitHub API at {self.api_url} could not be reached while trying to "
                f"{action} ({_one_line(str(exc)) or type(exc).__name__})",
                hint="Check the network and GITHUB_API_URL.",
            ) from None
        log.debug("%s %s -> HTTP %s", method, response.request.url.path, response.status_code)
        return response


def _raise_for_status(
    response: httpx.Response, action: str, scope: RunnerScope | None, auth: GitHubAuth
) -> None:
    """Turn a non-2xx answer into the ``GitHubApiError`` that says what to fix."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = _github_message(response)
    said = f": {message}" if message else ""
    if status == 401:
        if isinstance(auth, AppAuth):
            hint = (
                "Check --ghactions-app-id and that --ghactions-app-private-key is a current "
                "key of that App."
            )
        else:
            hint = "Check that the token is valid and not expired."
        raise GitHubCredentialsError(
            f"GitHub rejected {auth.describe()} (HTTP 401) while trying to {action}",
            hint=hint,
            status=status,
        )
    if status == 403 and _rate_limited(response, message):
        raise GitHubApiError(
            f"GitHub's API rate limit was hit while trying to {action} (HTTP 403){said}",
            hint="Retry later.",
            status=status,
        )
    if status in (403, 404) and scope is not None:
        if isinstance(auth, AppAuth):
            hint = f"The App must be installed on it with the {scope.permission}."
        else:
            classic = "admin:org" if scope.kind == "org" else "repo"
            hint = (
                f"A fine-grained token needs the {scope.permission}; "
                f"a classic token needs the {classic} scope."
            )
        raise GitHubPermissionError(
            f"{scope} was not found, or {auth.describe()} may not manage its "
            f"self-hosted runners (HTTP {status}) while trying to {action}",
            hint=hint,
            status=status,
        )
    if status == 422:
        raise GitHubApiError(
            f"GitHub refused to {action} (HTTP 422){said or ': no reason given'}", status=status
        )
    raise GitHubApiError(
        f"GitHub answered HTTP {status} while trying to {action}{said}", status=status
    )


def _rate_limited(response: httpx.Response, message: str) -> bool:
    return response.headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()


def _github_message(response: httpx.Response) -> str:
    """GitHub's ``message`` (or the start of a non-JSON body), on one line, redacted."""
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return _one_line(body["message"])
    return ""


def _one_line(text: str) -> str:
    text = " ".join(redact(text).split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    return text


def _json(response: httpx.Response, action: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GitHubApiError(f"GitHub's answer to '{action}' is not a JSON object")
    return body


def _json_field(response: httpx.Response, name: str, action: str) -> str:
    value = _json(response, action).get(name)
    if not isinstance(value, str) or not value:
        raise GitHubApiError(f"GitHub's answer to '{action}' has no {name!r}")
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def obtain_registration_token(
    scope: RunnerScope,
    *,
    given_token: str | None = None,
    auth: GitHubAuth | None = None,
    api_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """The registration token a new runner of ``scope`` registers with.

    Precedence, as in the Go mapt: a GitHub App mints one; else ``given_token`` (a
    registration token the user fetched, ``--ghactions-runner-token``) is used as is;
    else a plain token mints one. With none of them there is no way to register, which
    is an input error caught before any machine is created.
    """
    if given_token:
        register_secret(given_token.strip())
    if isinstance(auth, AppAuth) or (auth is not None and not given_token):
        with GitHubClient(auth, api_url=api_url, timeout=timeout) as client:
            return client.registration_token(scope)
    if given_token:
        return given_token.strip()

    raise InputError(
        f"registering a runner for {scope} needs GitHub credentials: set GITHUB_TOKEN "
        "(or GH_TOKEN) to a token that may manage its runners, pass --ghactions-app-id, "
        "--ghactions-app-installation-id and --ghactions-app-private-key, or pass a "
        "registration token with --ghactions-runner-token"
    )
