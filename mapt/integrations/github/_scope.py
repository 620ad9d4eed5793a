"""Who a runner belongs to (a repository or an organization) and which GitHub serves it.

The scope decides three things at once: the REST paths for registration tokens and
runner listings, the URL the runner's ``config.sh`` registers against, and the
permission a token needs. Validating it here, before any machine is created, turns a
typo into exit code 2 instead of a runner that never shows up an hour later.

Names follow GitHub's rules: an account or organization name is letters, digits, ``-``
(and ``_``, which Enterprise Managed Users have), at most 39 characters, starting with a
letter or digit; a repository name is letters, digits, ``.``, ``-`` and ``_``, at most
100 characters. Those alphabets also make every value safe to embed, quoted, in the
shell and PowerShell bootstrap scripts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from mapt.core import InputError, without_password

DEFAULT_SERVER_URL = "https://github.com"
DEFAULT_API_URL = "https://api.github.com"
REPO_FLAG = "--ghactions-runner-repo"
ORG_FLAG = "--ghactions-runner-org"

_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}")
_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
# A server is an origin only (GitHub Enterprise Server lives at its host's root); an API
# URL may carry a path (``/api/v3``). Both alphabets exclude quotes and shell syntax.
_SERVER_URL = re.compile(r"(https?)://([A-Za-z0-9.-]+)(:[0-9]{1,5})?/?")
_API_URL = re.compile(r"(https?)://([A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?")


def github_server_url(value: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The GitHub web server runners register with, without a trailing slash.

    ``value`` if given, else ``GITHUB_SERVER_URL`` (which GitHub Actions sets, so a
    workflow on GitHub Enterprise needs no extra setting), else ``https://github.com``.
    """
    source = "server URL"
    if not value:
        env = os.environ if env is None else env
        value = env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL
        source = "GITHUB_SERVER_URL"
    if not _SERVER_URL.fullmatch(value):
        raise InputError(
            f"{source} {without_password(value)!r} is not the http(s) address of a GitHub server "
            "(for example https://github.com or https://ghe.example.com)"
        )
    return value.rstrip("/")


def github_api_url(value: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The GitHub REST API base URL, without a trailing slash.

    ``value`` if given, else ``GITHUB_API_URL`` (set by GitHub Actions), else derived from
    ``GITHUB_SERVER_URL`` when that names another server than github.com, else
    ``https://api.github.com``. Deriving it matters: with only ``GITHUB_SERVER_URL`` set
    for an Enterprise server, falling back to api.github.com would send that server's
    token to github.com.
    """
    env = os.environ if env is None else env
    source = "API URL"
    if not value and env.get("GITHUB_API_URL"):
        value, source = env["GITHUB_API_URL"], "GITHUB_API_URL"
    if not value:
        server = github_server_url(env=env)
        if server == DEFAULT_SERVER_URL:
            return DEFAULT_API_URL
        host = urlsplit(server).netloc
        if host.endswith(".ghe.com"):  # GitHub Enterprise Cloud with data residency
            return f"{urlsplit(server).scheme}://api.{host}"
        return f"{server}/api/v3"  # GitHub Enterprise Server
    if not _API_URL.fullmatch(value):
        raise InputError(
            f"{source} {without_password(value)!r} is not the http(s) address of a GitHub API "
            "(for example https://api.github.com or https://ghe.example.com/api/v3)"
        )
    return value.rstrip("/")


@dataclass(frozen=True)
class RunnerScope:
    """A repository (``owner`` and ``repo``) or an organization (``owner`` only).

    Build it with ``for_repo``/``for_org`` (or ``scope_from_flags``) to accept what users
    type, including the full URLs the Go mapt took; the constructor only checks names.
    """

    owner: str
    repo: str | None = None

    def __post_init__(self) -> None:
        what = "owner" if self.repo is not None else "organization"
        if not _OWNER.fullmatch(self.owner):
            raise InputError(
                f"GitHub {what} name {self.owner!r} is not valid: use letters, digits, '-' "
                "and '_', starting with a letter or digit, at most 39 characters"
            )
        if self.repo is not None and (not _REPO.fullmatch(self.repo) or self.repo in {".", ".."}):
            raise InputError(
                f"GitHub repository name {self.repo!r} is not valid: use letters, digits, "
                "'.', '-' and '_', at most 100 characters"
            )

    @classmethod
    def for_repo(cls, value: str, *, server_url: str | None = None) -> RunnerScope:
        """Parse ``OWNER/REPO`` or ``https://<server>/OWNER/REPO`` (``--ghactions-runner-repo``)."""
        path = _strip_server(REPO_FLAG, value, server_url)
        if path.endswith(".git"):
            path = path[: -len(".git")]
        parts = path.split("/")
        if len(parts) != 2 or not _OWNER.fullmatch(parts[0]) or not _is_repo_name(parts[1]):
            raise InputError(
                f"{REPO_FLAG} {value!r} is not OWNER/REPO",
                hint="For example redhat-developer/mapt or https://github.com/redhat-developer/mapt.",
            )
        return cls(owner=parts[0], repo=parts[1])

    @classmethod
    def for_org(cls, value: str, *, server_url: str | None = None) -> RunnerScope:
        """Parse ``ORG`` or ``https://<server>/ORG`` (``--ghactions-runner-org``)."""
        path = _strip_server(ORG_FLAG, value, server_url)
        if not _OWNER.fullmatch(path):
            raise InputError(
                f"{ORG_FLAG} {value!r} is not a GitHub organization name",
                hint="Use letters, digits and '-', at most 39 characters, e.g. redhat-developer.",
            )
        return cls(owner=path)

    @classmethod
    def from_api_path(cls, path: str) -> RunnerScope:
        """The scope whose ``api_path`` is ``path`` (what the host stack records)."""
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "repos":
            return cls(owner=parts[1], repo=parts[2])
        if len(parts) == 2 and parts[0] == "orgs":
            return cls(owner=parts[1])
        raise InputError(f"runner scope {path!r} is not /repos/OWNER/REPO or /orgs/ORG")

    @property
    def kind(self) -> Literal["repo", "org"]:
        return "org" if self.repo is None else "repo"

    @property
    def slug(self) -> str:
        """``OWNER/REPO`` or ``ORG``: the path of the scope on the GitHub server."""
        return self.owner if self.repo is None else f"{self.owner}/{self.repo}"

    @property
    def api_path(self) -> str:
        """The REST API prefix of the scope: ``/repos/OWNER/REPO`` or ``/orgs/ORG``."""
        return f"/orgs/{self.owner}" if self.repo is None else f"/repos/{self.slug}"

    @property
    def permission(self) -> str:
        """The fine-grained (and GitHub App) permission that manages this scope's runners."""
        if self.repo is None:
            return "organization permission 'Self-hosted runners: write'"
        return "repository permission 'Administration: write'"

    def url(self, server_url: str = DEFAULT_SERVER_URL) -> str:
        """The web URL a runner registers against: ``<server>/OWNER/REPO`` or ``<server>/ORG``."""
        return f"{server_url.rstrip('/')}/{self.slug}"

    def __str__(self) -> str:
        return f"organization {self.owner}" if self.repo is None else f"repository {self.slug}"


def scope_from_flags(
    repo: str | None, org: str | None, *, server_url: str | None = None
) -> RunnerScope:
    """The scope from ``--ghactions-runner-repo`` and ``--ghactions-runner-org``.

    Exactly one must be given (an empty string counts as not given, as an empty
    ``MAPT_*`` variable would); the Go mapt had the same rule.
    """
    if repo and org:
        raise InputError(
            f"{REPO_FLAG} {repo!r} and {ORG_FLAG} {org!r} are mutually exclusive: "
            "a runner belongs to a repository or to an organization"
        )
    if repo:
        return RunnerScope.for_repo(repo, server_url=server_url)
    if org:
        return RunnerScope.for_org(org, server_url=server_url)
    raise InputError(
        f"a GitHub runner needs {REPO_FLAG} OWNER/REPO or {ORG_FLAG} ORG "
        "(the two are mutually exclusive)"
    )


def _is_repo_name(name: str) -> bool:
    return bool(_REPO.fullmatch(name)) and name not in {".", ".."}


def _strip_server(flag: str, value: str, server_url: str | None) -> str:
    """``value`` without a leading ``<server>/``, refusing a URL of another server.

    A URL on another host than the configured server would register the runner with
    one GitHub and ask another for its token; say so instead of failing later.
    """
    value = value.strip()
    if "://" not in value:
        return value.rstrip("/")
    server = github_server_url(server_url)
    parts = urlsplit(value)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if parts.query or parts.fragment or not parts.netloc:
        raise InputError(f"{flag} {value!r} is not a plain GitHub URL")
    if origin != server.lower():
        raise InputError(
            f"{flag} {value!r} is not on the GitHub server {server}",
            hint="For GitHub Enterprise, set GITHUB_SERVER_URL (and GITHUB_API_URL) to it.",
        )
    return parts.path.strip("/")
