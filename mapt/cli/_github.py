"""The ``--ghactions-*`` flags: a GitHub Actions runner on the host, removed on destroy.

Flag names are the Go mapt's. The registration token is obtained before anything is
created (so missing or rejected credentials cost nothing), and deregistration on
destroy never stands in the way of removing the machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from mapt.cli._options import option, secret_file_option, secret_option
from mapt.core import get_logger

if TYPE_CHECKING:
    from mapt.integrations.github import RunnerScope, RunnerSpec

log = get_logger(__name__)

RunnerToken = Annotated[
    str | None,
    secret_option(
        "--ghactions-runner-token",
        "A runner registration token (else one is asked for with GITHUB_TOKEN or the App).",
    ),
]
RunnerTokenFile = Annotated[str | None, secret_file_option("--ghactions-runner-token")]
RunnerRepo = Annotated[
    str | None,
    option("--ghactions-runner-repo", "Register a runner for this repository (OWNER/REPO)."),
]
RunnerOrg = Annotated[
    str | None, option("--ghactions-runner-org", "Register a runner for this organization.")
]
RunnerLabels = Annotated[
    str | None, option("--ghactions-runner-labels", "Extra runner labels, comma-separated.")
]
RunnerEphemeral = Annotated[
    bool, option("--ghactions-runner-ephemeral", "The runner takes one job, then leaves.")
]
AppId = Annotated[str | None, option("--ghactions-app-id", "GitHub App id (manages runners).")]
AppInstallationId = Annotated[
    str | None, option("--ghactions-app-installation-id", "The GitHub App's installation id.")
]
AppPrivateKey = Annotated[
    Path | None, option("--ghactions-app-private-key", "Path to the GitHub App's private key.")
]


def runner_scope(repo: str | None, org: str | None) -> RunnerScope | None:
    """The runner's repository or organization; None when no runner is asked for."""
    if not repo and not org:
        return None
    from mapt.integrations.github import github_server_url, scope_from_flags

    return scope_from_flags(repo, org, server_url=github_server_url())


def runner_spec(
    *,
    project: str,
    scope: RunnerScope,
    token: str | None,
    labels: str | None,
    ephemeral: bool,
    app_id: str | None,
    app_installation_id: str | None,
    app_private_key: Path | None,
) -> RunnerSpec:
    """Validate the runner flags, then obtain a registration token for the host."""
    from mapt.cli._options import comma_list
    from mapt.integrations.github import (
        RunnerSpec,
        obtain_registration_token,
        resolve_auth,
        runner_labels,
    )

    label_list = runner_labels(comma_list("--ghactions-runner-labels", labels))
    auth = resolve_auth(
        app_id=app_id, installation_id=app_installation_id, private_key_path=app_private_key
    )
    registration = obtain_registration_token(scope, given_token=token, auth=auth)
    return RunnerSpec.from_environment(
        scope, registration, name=project, labels=label_list, ephemeral=ephemeral
    )


def deregister_runner(
    *,
    project: str,
    scope: RunnerScope,
    app_id: str | None,
    app_installation_id: str | None,
    app_private_key: Path | None,
) -> str:
    """Remove the runner named after the project; say what happened, never fail.

    The machine is destroyed whatever this returns: a runner left registered is
    offline and harmless, a machine left running is not.
    """
    from mapt.core import MaptError
    from mapt.integrations.github import GitHubClient, resolve_auth

    done = False
    try:
        auth = resolve_auth(
            app_id=app_id, installation_id=app_installation_id, private_key_path=app_private_key
        )
        if auth is None:
            message = (
                f"runner {project!r} of {scope} was not deregistered: no GitHub credentials "
                "(set GITHUB_TOKEN or pass the --ghactions-app-* flags)"
            )
        else:
            with GitHubClient(auth) as client:
                removed = client.remove_runner(scope, project)
            done = True
            message = (
                f"runner {project!r} deregistered from {scope}"
                if removed
                else f"runner {project!r} was not registered in {scope} (nothing to remove)"
            )
    except MaptError as error:
        message = f"runner {project!r} of {scope} was not deregistered: {error}"
    if done:
        log.info("%s", message)
    else:
        log.warning("%s", message)
    return message
