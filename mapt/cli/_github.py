"""The ``--ghactions-*`` flags: a GitHub Actions runner on the host, removed on destroy.

Flag names are the Go mapt's. The registration token is obtained before anything is
created (so missing or rejected credentials cost nothing). The runner is named
``mapt-<project>``; destroy removes it by the id its host stack recorded, never by
name, and never stands in the way of removing the machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from mapt.cli._options import option, secret_file_option, secret_option
from mapt.core import get_logger

if TYPE_CHECKING:
    from mapt.integrations.github import RegisteredRunner, RunnerScope, RunnerSpec

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
        runner_name,
    )

    label_list = runner_labels(comma_list("--ghactions-runner-labels", labels))
    auth = resolve_auth(
        app_id=app_id, installation_id=app_installation_id, private_key_path=app_private_key
    )
    registration = obtain_registration_token(scope, given_token=token, auth=auth)
    return RunnerSpec.from_environment(
        scope, registration, name=runner_name(project), labels=label_list, ephemeral=ephemeral
    )


def deregister_runner(
    *,
    project: str,
    registered: RegisteredRunner | None,
    requested: RunnerScope | None,
    app_id: str | None,
    app_installation_id: str | None,
    app_private_key: Path | None,
) -> str | None:
    """Remove the runner the project's host stack recorded; say what happened, never fail.

    Only a runner mapt registered for this project is removed, by the id GitHub gave
    it: a project without that record (no state, or created without a runner) removes
    none, whatever ``--ghactions-runner-repo``/``-org`` says (``requested``); None
    means there was nothing to say. The machine is destroyed whatever this returns: a
    runner left registered is offline and harmless, a machine left running is not.
    """
    from mapt.core import MaptError
    from mapt.integrations.github import GitHubClient, resolve_auth

    if registered is None:
        if requested is None:
            return None
        message = (
            f"no runner of project {project!r} is recorded in its host stack: none "
            f"deregistered from {requested}"
        )
        log.info("%s", message)
        return message
    scope = registered.scope
    if requested is not None and requested != scope:
        log.warning(
            "the project's runner was registered in %s, not %s: removing that one", scope, requested
        )
    runner = f"runner {registered.name or project!r} (id {registered.runner_id})"
    done = False
    try:
        auth = resolve_auth(
            app_id=app_id, installation_id=app_installation_id, private_key_path=app_private_key
        )
        if auth is None:
            message = (
                f"{runner} of {scope} was not deregistered: no GitHub credentials "
                "(set GITHUB_TOKEN or pass the --ghactions-app-* flags)"
            )
        else:
            with GitHubClient(auth) as client:
                removed = client.remove_runner_by_id(
                    scope, registered.runner_id, name=registered.name
                )
            done = True
            message = (
                f"{runner} deregistered from {scope}"
                if removed
                else f"{runner} was no longer registered in {scope} (nothing to remove)"
            )
    except MaptError as error:
        message = f"{runner} of {scope} was not deregistered: {error}"
    if done:
        log.info("%s", message)
    else:
        log.warning("%s", message)
    return message
