"""A host's GitHub Actions runner: registered at create, removed at destroy.

The registration token is obtained once every other input is valid and before
anything is created (so missing or rejected credentials cost nothing). The runner is
named ``mapt-<project>``; destroy removes it by the id its host stack recorded, never
by name, and never stands in the way of removing the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mapt.core import get_logger

if TYPE_CHECKING:
    from mapt.integrations.github import GitHubAuth, RegisteredRunner, RunnerScope, RunnerSpec

log = get_logger(__name__)


@dataclass(frozen=True)
class GitHubAppCredentials:
    """A GitHub App that may manage runners (else ``GITHUB_TOKEN``/``GH_TOKEN`` is used)."""

    app_id: str | None = None
    installation_id: str | None = None
    private_key: Path | None = None

    def auth(self) -> GitHubAuth | None:
        """The credentials runners are managed with (``resolve_auth``): this App when any
        of its values is given (``InputError`` unless all three are, and valid), else
        the App of the ``MAPT_GHACTIONS_APP_*`` variables, ``GITHUB_TOKEN``'s or
        ``GH_TOKEN``'s; None when there are none."""
        from mapt.integrations.github import resolve_auth

        return resolve_auth(
            app_id=self.app_id,
            installation_id=self.installation_id,
            private_key_path=self.private_key,
        )

    def check(self) -> None:
        """Refuse App values given that ``auth`` would refuse (an incomplete App, an id
        that is not a whole number, a key file that is not an RSA key): exit 2, before
        anything is created or destroyed. A destroy's removal of the runner never fails,
        so unchecked, a typo there would leave the runner registered and exit 0."""
        if any(
            value not in (None, "")
            for value in (self.app_id, self.installation_id, self.private_key)
        ):
            self.auth()


@dataclass(frozen=True)
class RunnerRequest:
    """The runner a create registers: where, with which labels, with which credentials.

    ``token`` is a registration token given outright (a secret, out of ``repr``); None
    asks GitHub for one with the App or ``GITHUB_TOKEN``. ``labels`` are validated.
    """

    scope: RunnerScope
    token: str | None = field(default=None, repr=False)
    labels: tuple[str, ...] = ()
    ephemeral: bool = False
    app: GitHubAppCredentials = field(default_factory=GitHubAppCredentials)


def runner_scope(repo: str | None, org: str | None) -> RunnerScope | None:
    """The runner's repository or organization; None when no runner is asked for."""
    if not repo and not org:
        return None
    from mapt.integrations.github import github_server_url, scope_from_flags

    return scope_from_flags(repo, org, server_url=github_server_url())


def register_runner(project: str, runner: RunnerRequest) -> RunnerSpec:
    """Obtain a registration token for the project's runner: what the host is handed."""
    from mapt.integrations.github import RunnerSpec, obtain_registration_token, runner_name

    registration = obtain_registration_token(
        runner.scope, given_token=runner.token, auth=runner.app.auth()
    )
    return RunnerSpec.from_environment(
        runner.scope,
        registration,
        name=runner_name(project),
        labels=runner.labels,
        ephemeral=runner.ephemeral,
    )


def deregister_runner(
    *,
    project: str,
    registered: RegisteredRunner | None,
    requested: RunnerScope | None,
    app: GitHubAppCredentials,
) -> str | None:
    """Remove the runner the project's host stack recorded; say what happened, never fail.

    Only a runner mapt registered for this project is removed, by the id GitHub gave
    it: a project without that record (no state, or created without a runner) removes
    none, whatever ``--ghactions-runner-repo``/``-org`` says (``requested``); None
    means there was nothing to say. The machine is destroyed whatever this returns: a
    runner left registered is offline and harmless, a machine left running is not.
    """
    from mapt.core import MaptError
    from mapt.integrations.github import GitHubClient

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
        auth = app.auth()
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
