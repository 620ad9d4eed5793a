"""GitHub Actions: self-hosted runners on mapt's hosts, registered and removed for you.

What it provides, each usable on its own:

- ``RunnerScope`` / ``scope_from_flags``: the repository or organization a runner
  belongs to, validated from ``--ghactions-runner-repo`` / ``--ghactions-runner-org``.
- ``resolve_auth`` -> ``TokenAuth`` | ``AppAuth``: the credentials that may manage
  runners (``GITHUB_TOKEN``/``GH_TOKEN`` or a GitHub App), or None.
- ``GitHubClient``: registration tokens and runner removal over the REST API;
  ``obtain_registration_token`` applies the Go mapt's precedence of credentials.
- ``RunnerSpec``, ``runner_name``: the runner to register, named ``mapt-<project>``.
- ``linux_runner_script``, ``windows_runner_script``: the first-boot scripts that
  install the runner (no secret); ``linux_runner_configure_script``,
  ``windows_runner_configure_script``: the scripts mapt runs over SSH to register it,
  reading the token on standard input; ``runner_id_from_output`` reads the id they
  print (pure functions).

Importing this package loads neither ``httpx`` nor ``jwt``; they are imported by the
first call that needs them, so the CLI can validate flags with it cheaply.
"""

from mapt.integrations.github._auth import (
    AppAuth,
    GitHubAuth,
    TokenAuth,
    resolve_auth,
)
from mapt.integrations.github._bootstrap import (
    DEFAULT_RUNNER_VERSION,
    LINUX_RUNNER_DIR,
    MIN_RUNNER_VERSION,
    RUNNER_NAME_PREFIX,
    RegisteredRunner,
    RunnerSpec,
    linux_runner_configure_script,
    linux_runner_script,
    runner_arch,
    runner_id_from_output,
    runner_labels,
    runner_name,
    windows_runner_configure_script,
    windows_runner_script,
)
from mapt.integrations.github._client import (
    GitHubClient,
    obtain_registration_token,
)
from mapt.integrations.github._errors import (
    GitHubApiError,
    GitHubCredentialsError,
    GitHubPermissionError,
    GitHubUnreachableError,
)
from mapt.integrations.github._scope import (
    DEFAULT_API_URL,
    DEFAULT_SERVER_URL,
    RunnerScope,
    github_api_url,
    github_server_url,
    scope_from_flags,
)

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_RUNNER_VERSION",
    "DEFAULT_SERVER_URL",
    "LINUX_RUNNER_DIR",
    "MIN_RUNNER_VERSION",
    "RUNNER_NAME_PREFIX",
    "AppAuth",
    "GitHubApiError",
    "GitHubAuth",
    "GitHubClient",
    "GitHubCredentialsError",
    "GitHubPermissionError",
    "GitHubUnreachableError",
    "RegisteredRunner",
    "RunnerScope",
    "RunnerSpec",
    "TokenAuth",
    "github_api_url",
    "github_server_url",
    "linux_runner_configure_script",
    "linux_runner_script",
    "obtain_registration_token",
    "resolve_auth",
    "runner_arch",
    "runner_id_from_output",
    "runner_labels",
    "runner_name",
    "scope_from_flags",
    "windows_runner_configure_script",
    "windows_runner_script",
]
