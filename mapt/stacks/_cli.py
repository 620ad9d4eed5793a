"""Finding, checking and installing the Pulumi CLI that the Automation API drives.

``pulumi.automation`` runs the ``pulumi`` binary for every operation. Left to itself
it only looks on ``PATH`` and fails with a bare ``FileNotFoundError`` (after leaving a
``/tmp/automation-*`` directory behind). mapt looks where Pulumi's installer puts the
binary too, checks the version before creating anything, and says how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mapt.core import InputError, PrerequisiteError, get_logger

if TYPE_CHECKING:
    from pulumi.automation import PulumiCommand

_log = get_logger(__name__)

# The oldest CLI the real-engine tests ran on (tests/stacks/real_engine, .ci/run builds it
# with scripts/build-pulumi-cli.sh): 3.205, the last release whose engine events the SDK
# reads from a file (newer ones stream them over gRPC). 3.181, which let refresh and
# destroy run with an inline program (``--client``), cannot be built from its published
# Go modules (its pkg module needs sdk changes published later), so it is untested.
MIN_PULUMI_VERSION = "3.205.0"

# The CLIs already version-checked by this process, by executable and what its file is
# (see pulumi_command): ``PulumiCommand()`` runs ``pulumi version``, a Go program that
# takes about 0.2 s of CPU to start, and every engine (one per operation in the service,
# two in one ``host create``) would run it again for the same binary.
_checked: dict[tuple[str, tuple[int, int, int, int], bool], PulumiCommand] = {}
_checked_lock = threading.Lock()

_INSTALL_HINT = (
    "Run `mapt setup pulumi` to install it (it calls pulumi.automation's "
    "PulumiCommand.install(), which downloads from get.pulumi.com into ~/.pulumi), "
    "or install it yourself: curl -fsSL https://get.pulumi.com | sh"
)


def pulumi_home(environ: Mapping[str, str] | None = None) -> Path:
    """Pulumi's home directory: ``$PULUMI_HOME``, else ``~/.pulumi``."""
    env = os.environ if environ is None else environ
    home = env.get("PULUMI_HOME")
    return Path(home).expanduser() if home else Path.home() / ".pulumi"


def search_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Directories searched after ``PATH``, in order.

    ``$PULUMI_HOME/bin`` and ``~/.pulumi/bin`` are where get.pulumi.com's installer
    and ``mapt setup pulumi`` put the binary; ``~/.pulumi/versions/<sdk>/bin`` is
    where ``PulumiCommand.install()`` puts it when called without a root.
    """
    from pulumi._version import version as sdk_version

    dirs = [pulumi_home(environ) / "bin", Path.home() / ".pulumi" / "bin"]
    dirs.append(Path.home() / ".pulumi" / "versions" / str(sdk_version) / "bin")
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


def find_pulumi(environ: Mapping[str, str] | None = None) -> Path | None:
    """The ``pulumi`` executable to use, or None when there is none."""
    env = os.environ if environ is None else environ
    on_path = shutil.which("pulumi", path=env.get("PATH", os.defpath))
    if on_path:
        return Path(on_path)
    for directory in search_dirs(env):
        candidate = directory / "pulumi"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def pulumi_command(environ: Mapping[str, str] | None = None) -> PulumiCommand:
    """A ``PulumiCommand`` for the installed CLI, or ``PrerequisiteError`` (exit 5).

    Runs ``pulumi version`` once per executable file and process (a replaced file is
    checked again; a failed check is not remembered); call it before creating a
    workspace so a missing or outdated CLI fails before anything is written.
    """
    from pulumi.automation import PulumiCommand
    from pulumi.automation.errors import InvalidVersionError
    from semver import VersionInfo

    executable = find_pulumi(environ)
    if executable is None:
        raise PrerequisiteError(
            "the Pulumi CLI was not found on PATH, in $PULUMI_HOME/bin or in ~/.pulumi/bin",
            hint=_INSTALL_HINT,
        )
    # PulumiCommand runs ``<root>/bin/pulumi``; every directory searched ends in bin.
    root = str(executable.parent.parent) if executable.parent.name == "bin" else None
    if root is None and shutil.which("pulumi") != str(executable):
        raise PrerequisiteError(
            f"the Pulumi CLI at {executable} is not in a bin directory",
            hint="Put it on PATH or in ~/.pulumi/bin.",
        )
    try:
        identity = executable.stat()
    except OSError as error:
        raise PrerequisiteError(
            f"the Pulumi CLI at {executable} does not run: {error}", hint=_INSTALL_HINT
        ) from error
    # The same path, the same file (a reinstall or upgrade changes inode, size or
    # mtime) and the same opt-out of the SDK's version check: the same answer.
    key = (
        str(executable),
        (identity.st_dev, identity.st_ino, identity.st_size, identity.st_mtime_ns),
        os.environ.get("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK") is not None,
    )
    with _checked_lock:
        known = _checked.get(key)
    if known is not None:
        return known
    try:
        command = PulumiCommand(root=root, version=VersionInfo.parse(MIN_PULUMI_VERSION))
    except InvalidVersionError as error:
        raise PrerequisiteError(
            f"the Pulumi CLI at {executable} is not usable: {error} "
            f"(mapt needs {MIN_PULUMI_VERSION} or newer, major version 3)",
            hint=_INSTALL_HINT,
        ) from error
    except (OSError, subprocess.CalledProcessError) as error:
        raise PrerequisiteError(
            f"the Pulumi CLI at {executable} does not run: {error}", hint=_INSTALL_HINT
        ) from error
    _log.debug("using the Pulumi CLI %s (version %s)", executable, command.version)
    with _checked_lock:
        _checked[key] = command
    return command


def install_pulumi(root: Path | None = None, version: str | None = None) -> PulumiCommand:
    """Install the Pulumi CLI under ``root`` (default: Pulumi's home) and return it.

    Uses ``PulumiCommand.install()``, which keeps an existing install of that version
    and otherwise downloads get.pulumi.com's installer. The default version is the
    one matching the installed Python SDK.
    """
    from pulumi.automation import PulumiCommand
    from pulumi.automation.errors import InvalidVersionError
    from semver import VersionInfo

    target = root if root is not None else pulumi_home()
    try:
        wanted = VersionInfo.parse(version) if version else None
    except ValueError as error:
        raise InputError(f"{version!r} is not a Pulumi version (e.g. 3.200.0)") from error
    if wanted is not None and wanted < VersionInfo.parse(MIN_PULUMI_VERSION):
        raise InputError(f"Pulumi {version} is older than mapt's minimum {MIN_PULUMI_VERSION}")
    try:
        return PulumiCommand.install(root=str(target), version=wanted)
    except InvalidVersionError as error:
        raise PrerequisiteError(
            f"the Pulumi CLI installed in {target} is unusable: {error}"
        ) from error
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "output", None) or error
        raise PrerequisiteError(
            f"installing the Pulumi CLI into {target} failed: {detail!s}".strip(),
            hint="Check access to https://get.pulumi.com, or install it yourself: "
            "curl -fsSL https://get.pulumi.com | sh",
        ) from error
