"""The scripts that install a GitHub Actions runner on a host and register it.

Pure functions from a validated ``RunnerSpec`` to text, tested without a machine. There
are two per OS, because the registration token must never sit in user data (which
``ec2:DescribeInstanceAttribute`` and every process on the host, through the instance
metadata service, can read):

- the *install* script (``linux_runner_script``, ``windows_runner_script``) runs at
  first boot from user data: it downloads and unpacks the runner and holds no secret;
- the *configure* script (``linux_runner_configure_script``,
  ``windows_runner_configure_script``) is run by mapt over SSH once the host is ready.
  It reads the token from its standard input and hands it to ``config.sh`` in the
  ``ACTIONS_RUNNER_INPUT_TOKEN`` environment variable, which the runner reads and then
  clears: the token is never in a file nor in any process's arguments, and the
  environment of a process is readable by its own user and root only. The script ends
  by printing ``mapt-runner-id=<id>`` from the runner's ``.runner`` file, the id
  GitHub gave this registration, which mapt records to delete exactly that runner.

Every value that reaches a script is first checked against an alphabet with no quotes,
spaces or shell syntax, and is then quoted anyway (``shlex.quote`` for bash, single
quotes for PowerShell), so no label or name can run a command on the host. The scripts
never trace (``set -x``) or print the token.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mapt.core import InputError, register_secret
from mapt.integrations.github._scope import DEFAULT_SERVER_URL, RunnerScope, github_server_url

LABELS_FLAG = "--ghactions-runner-labels"
# Runners mapt registers are called mapt-<project>: a name that says who made the
# runner, and that no runner registered by hand is likely to share.
RUNNER_NAME_PREFIX = "mapt-"
# The configure scripts end with this line, followed by the runner's id.
RUNNER_ID_MARKER = "mapt-runner-id="
# The environment variable the runner's config.sh reads --token from.
TOKEN_VARIABLE = "ACTIONS_RUNNER_INPUT_TOKEN"

# The runner release mapt installs unless told otherwise. GitHub refuses to register
# runners older than 2.329.0 on github.com; a registered runner updates itself, which
# GitHub requires within 30 days of each new release, so this pin only sets the start.
DEFAULT_RUNNER_VERSION = "2.337.0"
MIN_RUNNER_VERSION = "2.329.0"
RELEASES_URL = "https://github.com/actions/runner/releases/download"
LINUX_RUNNER_DIR = "/opt/actions-runner"
WINDOWS_RUNNER_DIR = "C:\\actions-runner"
# Written by the Windows install script once the runner is unpacked. Windows' SSH server
# answers before its first-boot script has finished (nothing like `cloud-init status
# --wait` exists there), so the configure script waits for this file.
WINDOWS_INSTALLED_MARKER = ".mapt-installed"
WINDOWS_INSTALL_WAIT_MINUTES = 15

# SHA-256 of the pinned release's archives (from its release notes). Archives of other
# versions are checked by HTTPS only.
KNOWN_SHA256: Mapping[str, str] = {
    "actions-runner-linux-x64-2.337.0.tar.gz": (
        "70920811a4f8ad4328818682bca5c6469c1c942fab52448868071d0063816613"
    ),
    "actions-runner-linux-arm64-2.337.0.tar.gz": (
        "9b1dc70626422526e3c94767cf024896beb15da5342a3f4819bf2feac13e0393"
    ),
    "actions-runner-win-x64-2.337.0.zip": (
        "1150692afa94e71f872017e254ea55b6eece1eece3fe7e3a6d4c93d0a1b85cfc"
    ),
}

_ARCHES: Mapping[str, str] = {"x86_64": "x64", "arm64": "arm64"}
_LABEL = re.compile(r"[A-Za-z0-9._-]{1,100}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}")
# Registration tokens are upper-case base32; allow the characters of any GitHub token,
# none of which is special inside shell or PowerShell quotes.
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,512}")
_LINUX_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def runner_labels(labels: Iterable[object]) -> tuple[str, ...]:
    """Validated runner labels, duplicates (compared without case, as GitHub does) dropped.

    Public so a caller can check ``--ghactions-runner-labels`` before asking GitHub for
    a registration token.
    """
    kept: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise InputError(
                f"{LABELS_FLAG} item {label!r} is not a valid runner label: use letters, "
                "digits, '.', '-' and '_' (at most 100), separated by commas"
            )
        if label.lower() not in (known.lower() for known in kept):
            kept.append(label)
    return tuple(kept)


def runner_name(project: str) -> str:
    """The name mapt registers a project's runner under: ``mapt-<project>``."""
    return f"{RUNNER_NAME_PREFIX}{project}"


def runner_id_from_output(output: str) -> int | None:
    """The runner id a configure script printed (its last ``mapt-runner-id=`` line)."""
    found = re.findall(rf"^{re.escape(RUNNER_ID_MARKER)}([0-9]+)\s*$", output, re.MULTILINE)
    return int(found[-1]) if found else None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class RunnerSpec:
    """One runner to install: where it registers, with which token, name and labels.

    ``name`` is ``runner_name(project)`` when the CLI builds it (``mapt-<project>``);
    ``labels`` are added to the runner's defaults (``self-hosted``, the OS and the
    architecture); an ``ephemeral`` runner takes one job and then deregisters itself.
    ``server_url`` is the GitHub web server (``GITHUB_SERVER_URL`` for GitHub
    Enterprise: see ``from_environment``).
    """

    scope: RunnerScope
    token: str = field(repr=False)  # a registration token: never in a repr or a log line
    name: str
    labels: tuple[str, ...] = ()
    ephemeral: bool = False
    version: str = DEFAULT_RUNNER_VERSION
    server_url: str = DEFAULT_SERVER_URL

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not _TOKEN.fullmatch(self.token):
            # Never echo the token, not even a rejected one.
            raise InputError(
                "the runner registration token is empty or has characters a GitHub token never has"
            )
        register_secret(self.token)
        if not _NAME.fullmatch(self.name):
            raise InputError(
                f"runner name {self.name!r} is not valid: use letters, digits, '.', '-' and "
                "'_', starting with a letter or digit, at most 64 characters"
            )
        if isinstance(self.labels, str):
            raise TypeError("RunnerSpec.labels is a tuple of labels, not a string")
        object.__setattr__(self, "labels", runner_labels(self.labels))
        if not isinstance(self.ephemeral, bool):
            raise TypeError("RunnerSpec.ephemeral is a bool")
        if not _VERSION.fullmatch(self.version):
            raise InputError(
                f"runner version {self.version!r} is not a release number such as "
                f"{DEFAULT_RUNNER_VERSION}"
            )
        if not self.server_url:
            raise InputError("the GitHub server URL is empty")
        server = github_server_url(self.server_url)
        object.__setattr__(self, "server_url", server)
        if server == DEFAULT_SERVER_URL and _version_tuple(self.version) < _version_tuple(
            MIN_RUNNER_VERSION
        ):
            raise InputError(
                f"runner version {self.version!r} is older than {MIN_RUNNER_VERSION}, the "
                "oldest github.com lets register"
            )

    @classmethod
    def from_environment(
        cls,
        scope: RunnerScope,
        token: str,
        name: str,
        labels: tuple[str, ...] = (),
        ephemeral: bool = False,
        version: str = DEFAULT_RUNNER_VERSION,
        *,
        env: Mapping[str, str] | None = None,
    ) -> RunnerSpec:
        """A spec whose server is ``GITHUB_SERVER_URL`` (set in GitHub Actions), else github.com."""
        server = github_server_url(env=os.environ if env is None else env)
        return cls(scope, token, name, labels, ephemeral, version, server)

    @property
    def url(self) -> str:
        """The URL ``config.sh --url`` takes: ``<server>/OWNER/REPO`` or ``<server>/ORG``."""
        return self.scope.url(self.server_url)

    def archive(self, platform: str) -> str:
        """The release archive for ``linux-x64``, ``linux-arm64`` or ``win-x64``."""
        extension = "zip" if platform.startswith("win-") else "tar.gz"
        return f"actions-runner-{platform}-{self.version}.{extension}"

    def download_url(self, platform: str) -> str:
        return f"{RELEASES_URL}/v{self.version}/{self.archive(platform)}"

    def config_args(self) -> list[str]:
        """The ``config.sh``/``config.cmd`` arguments shared by Linux and Windows.

        The token is not among them: it goes in the ``ACTIONS_RUNNER_INPUT_TOKEN``
        environment variable, as process arguments are readable by every user.
        """
        args = ["--unattended", "--url", self.url, "--name", self.name]
        if self.labels:
            args += ["--labels", ",".join(self.labels)]
        # --replace: a spot replacement (or a retried create) reuses the project's name.
        args.append("--replace")
        if self.ephemeral:
            args.append("--ephemeral")
        return args


@dataclass(frozen=True)
class RegisteredRunner:
    """A runner mapt registered: its scope and the id GitHub gave it (from the host stack)."""

    scope: RunnerScope
    runner_id: int
    name: str | None = None


def runner_arch(arch: str) -> str:
    """The runner's name for mapt's ``--arch``: ``x86_64`` -> ``x64``, ``arm64`` -> ``arm64``."""
    try:
        return _ARCHES[arch]
    except KeyError:
        raise InputError(
            f"--arch {arch!r} has no GitHub Actions runner for Linux: use x86_64 or arm64"
        ) from None


def linux_runner_script(
    spec: RunnerSpec, arch: str, *, run_as: str, install_dir: str = LINUX_RUNNER_DIR
) -> str:
    """A bash script, run as root on first boot, that installs the runner (no secret).

    It installs ``tar`` if the image lacks it (RHEL and Fedora: ``dnf``), downloads the
    release for ``arch`` (checking its SHA-256 when mapt knows it), unpacks it into
    ``install_dir`` owned by ``run_as`` (the image's default user) and installs the
    runner's OS dependencies. Registering is ``linux_runner_configure_script``'s job.
    A directory that already holds the runner is left alone, so running the script
    twice downloads once. Save it with ``write_files`` and run it with ``bash``.
    """
    platform = f"linux-{runner_arch(arch)}"
    _check_linux_runner(run_as, install_dir)
    archive = spec.archive(platform)
    checksum = KNOWN_SHA256.get(archive)
    verify = (
        f"echo {shlex.quote(f'{checksum}  {archive}')} | sha256sum --check --quiet - || {{\n"
        f'  echo "mapt: {archive} does not have the expected SHA-256" >&2\n'
        "  exit 1\n"
        "}\n"
        if checksum
        else ""
    )
    return f"""#!/bin/bash
# GitHub Actions runner {spec.name} for {spec.url} (written by mapt).
# It only installs: mapt registers the runner over SSH, so no token is in user data.
set -euo pipefail
runner_user={shlex.quote(run_as)}
runner_dir={shlex.quote(install_dir)}
if [ -f "$runner_dir/config.sh" ]; then
  echo "mapt: the GitHub Actions runner is already installed in $runner_dir" >&2
  exit 0
fi
# Minimal cloud images can lack tar; the runner's own dependency script is in the archive.
command -v tar >/dev/null || dnf install -y tar
mkdir -p "$runner_dir"
cd "$runner_dir"
curl -fsSL --retry 5 --retry-delay 5 --retry-connrefused -o {shlex.quote(archive)} \\
  {shlex.quote(spec.download_url(platform))}
{verify}tar -xzf {shlex.quote(archive)}
rm -f {shlex.quote(archive)}
./bin/installdependencies.sh || echo "mapt: installing the runner's dependencies failed" >&2
chown -R "$runner_user:" "$runner_dir"
"""


def linux_runner_configure_script(
    spec: RunnerSpec, *, run_as: str, install_dir: str = LINUX_RUNNER_DIR
) -> str:
    """A bash script, run as root over SSH, that registers the installed runner.

    The registration token is the first line of its standard input. ``config.sh``
    runs as ``run_as`` (it refuses root) with the token in ``ACTIONS_RUNNER_INPUT_TOKEN``
    (a variable of that one command, never an argument); then the runner is installed
    as a systemd service of that user and started. A runner already configured is
    left alone (nothing is read), so a re-run registers once. The last line printed is
    ``mapt-runner-id=<id>``, read from the runner's ``.runner`` file.
    """
    _check_linux_runner(run_as, install_dir)
    config = " ".join(shlex.quote(arg) for arg in spec.config_args())
    return f"""set -euo pipefail
runner_user={shlex.quote(run_as)}
cd {shlex.quote(install_dir)}
if [ -f .runner ]; then
  echo "mapt: the GitHub Actions runner {spec.name} is already configured" >&2
else
  IFS= read -r token || true
  if [ -z "$token" ]; then
    echo "mapt: no registration token on standard input" >&2
    exit 1
  fi
  {TOKEN_VARIABLE}="$token" runuser -u "$runner_user" -- ./config.sh {config}
  unset token
  ./svc.sh install "$runner_user"
  ./svc.sh start
fi
runner_id=$(grep -o '"agentId": *[0-9]*' .runner | grep -o '[0-9]*$' || true)
echo "{RUNNER_ID_MARKER}$runner_id"
"""


def _check_linux_runner(run_as: str, install_dir: str) -> None:
    if not _LINUX_USER.fullmatch(run_as):
        raise InputError(f"runner user {run_as!r} is not a Linux user name")
    if not install_dir.startswith("/") or not re.fullmatch(r"[A-Za-z0-9._/-]+", install_dir):
        raise InputError(f"runner directory {install_dir!r} is not a plain absolute path")


def windows_runner_script(spec: RunnerSpec, *, install_dir: str = WINDOWS_RUNNER_DIR) -> str:
    """A PowerShell fragment, run as Administrator on first boot, that installs the runner.

    It downloads the x64 release (checking its SHA-256 when mapt knows it) and unpacks
    it into ``install_dir``; it holds no secret. Registering is
    ``windows_runner_configure_script``'s job. Every value is a single-quoted string;
    ``RunnerSpec`` guarantees none contains a quote. A directory that already holds the
    runner is left alone.
    """
    platform = "win-x64"
    _check_windows_dir(install_dir)
    archive = spec.archive(platform)
    checksum = KNOWN_SHA256.get(archive)
    verify = (
        f"""  $hash = (Get-FileHash -LiteralPath $archive -Algorithm SHA256).Hash
  if ($hash -ne {_ps_quote(checksum)}) {{
    throw "mapt: {archive} does not have the expected SHA-256 (got $hash)"
  }}
"""
        if checksum
        else ""
    )
    return f"""# GitHub Actions runner {spec.name} for {spec.url} (written by mapt).
# It only installs: mapt registers the runner over SSH, so no token is in user data.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12
$runnerDir = {_ps_quote(install_dir)}
if (Test-Path -LiteralPath (Join-Path $runnerDir 'config.cmd')) {{
  Write-Output "mapt: the GitHub Actions runner is already installed in $runnerDir"
}} else {{
  New-Item -ItemType Directory -Force -Path $runnerDir | Out-Null
  $archive = Join-Path $runnerDir {_ps_quote(archive)}
  Invoke-WebRequest -UseBasicParsing -Uri {_ps_quote(spec.download_url(platform))} `
    -OutFile $archive
{verify}  Expand-Archive -LiteralPath $archive -DestinationPath $runnerDir -Force
  Remove-Item -LiteralPath $archive
}}
New-Item -ItemType File -Force -Path (Join-Path $runnerDir '{WINDOWS_INSTALLED_MARKER}') | Out-Null
"""


def windows_runner_configure_script(
    spec: RunnerSpec, *, install_dir: str = WINDOWS_RUNNER_DIR
) -> str:
    """A PowerShell script, run as Administrator over SSH, that registers the runner.

    It first waits (up to 15 minutes) for the first-boot script to have installed the
    runner. The registration token is the first line of its standard input; it reaches
    ``config.cmd --runasservice`` (which installs and starts the Windows service) in
    ``ACTIONS_RUNNER_INPUT_TOKEN``, removed from the session right after. A runner
    already configured is left alone. The last line printed is ``mapt-runner-id=<id>``.
    """
    _check_windows_dir(install_dir)
    config = " ".join(_ps_quote(arg) for arg in [*spec.config_args(), "--runasservice"])
    installed = _ps_quote(f"{install_dir}\\{WINDOWS_INSTALLED_MARKER}")
    wait = WINDOWS_INSTALL_WAIT_MINUTES
    return f"""$ErrorActionPreference = 'Stop'
$deadline = (Get-Date).AddMinutes({wait})
while (-not (Test-Path -LiteralPath {installed})) {{
  if ((Get-Date) -gt $deadline) {{
    throw 'mapt: the runner was not installed {wait} minutes after SSH answered'
  }}
  Start-Sleep -Seconds 5
}}
Set-Location -LiteralPath {_ps_quote(install_dir)}
if (Test-Path -LiteralPath '.runner') {{
  Write-Output 'mapt: the GitHub Actions runner {spec.name} is already configured'
}} else {{
  $token = [Console]::In.ReadLine()
  if (-not $token) {{ throw 'mapt: no registration token on standard input' }}
  $env:{TOKEN_VARIABLE} = $token
  Remove-Variable -Name token
  try {{
    # Judge config.cmd by its exit code: under 'Stop', Windows PowerShell would turn any
    # line it writes to stderr into a terminating error.
    $ErrorActionPreference = 'Continue'
    & .\\config.cmd {config}
    $configExit = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
  }} finally {{
    Remove-Item -Path Env:{TOKEN_VARIABLE} -ErrorAction SilentlyContinue
  }}
  if ($configExit -ne 0) {{ throw "mapt: config.cmd failed with exit code $configExit" }}
}}
$runnerId = (Get-Content -LiteralPath '.runner' -Raw | ConvertFrom-Json).agentId
Write-Output "{RUNNER_ID_MARKER}$runnerId"
"""


def _check_windows_dir(install_dir: str) -> None:
    if not re.fullmatch(r"[A-Za-z]:\\[A-Za-z0-9._\\-]*", install_dir):
        raise InputError(f"runner directory {install_dir!r} is not a plain Windows path")


def _ps_quote(value: str) -> str:
    """A PowerShell single-quoted literal; values with a quote never get this far."""
    if "'" in value or "\n" in value:
        raise InputError(f"{value!r} cannot be embedded in the runner's PowerShell script")
    return f"'{value}'"
