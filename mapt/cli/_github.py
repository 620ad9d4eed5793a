"""The ``--ghactions-*`` flags: a GitHub Actions runner on the host, removed on destroy.

Flag names are the Go mapt's. What they do (the registration before anything is
created, the removal by the id the host stack recorded) is ``mapt.hosts``'s.
"""

from __future__ import annotations

from typing import Annotated

from mapt.cli._options import option, secret_file_option, secret_option

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
# Text, not a Path: Click turns "" into ".", which the empty-value check cannot see.
AppPrivateKey = Annotated[
    str | None, option("--ghactions-app-private-key", "Path to the GitHub App's private key.")
]
