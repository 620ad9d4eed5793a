"""Skips that CI accepts, and the check that fails a CI run on any other skip.

A test may be skipped only because a system program it drives is absent from the
machine (for example ``/usr/sbin/sshd``), and only through ``needs_program``, which
names the Debian package that provides it. ``.ci/run`` installs those packages
itself (``python -m tests.harness.skips`` prints them), so under CI nothing should
be skipped at all; the one other accepted skip is ``optional_data``: an extra check
on data kept outside the repository (``../shared``), which a clone does not have.

``SkipGuard`` records every skip with its reason. When ``CI`` is true (GitHub Actions
and ``.ci/run`` set it) or ``--fail-on-skip`` is given, a skip for any other reason
fails the session (exit 1) and lists the skipped tests with their reasons.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Program -> the Debian package that provides it. .ci/run installs these.
SYSTEM_PROGRAMS = {
    "/usr/sbin/sshd": "openssh-server",
    "systemd-analyze": "systemd",
    # The service's PostgreSQL tests (tests/harness/postgres.py starts a throwaway server).
    "/usr/lib/postgresql/*/bin/initdb": "postgresql",
}
_PROGRAM_REASON = "needs {program} (Debian package {package}; .ci/run installs it)"
_DATA_REASON = "optional data is absent: {path}"


def needs_program(program: str) -> pytest.MarkDecorator:
    """Skip unless ``program`` (a path, possibly a glob, or a name on PATH) is installed."""
    package = SYSTEM_PROGRAMS[program]
    absent = (not glob.glob(program)) if "/" in program else shutil.which(program) is None
    return pytest.mark.skipif(
        absent, reason=_PROGRAM_REASON.format(program=program, package=package)
    )


def optional_data(path: Path) -> None:
    """Skip the calling test when ``path`` (data outside the repository) is absent."""
    if not path.exists():
        pytest.skip(_DATA_REASON.format(path=path))


def accepted(reason: str) -> bool:
    """Is ``reason`` one of the two kinds of skip CI accepts?"""
    programs = (
        _PROGRAM_REASON.format(program=program, package=package)
        for program, package in SYSTEM_PROGRAMS.items()
    )
    prefix = _DATA_REASON.split("{", 1)[0]
    return reason.startswith(prefix) or reason in programs


def strict_from_environment() -> bool:
    """Is this a CI run (``CI`` set to true, as GitHub Actions and .ci/run do)?"""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@dataclass(eq=False)  # pluggy keeps plugins in sets
class SkipGuard:
    """Collects skips; in strict mode, an unexpected one fails the session."""

    strict: bool
    unexpected: list[tuple[str, str]] = field(default_factory=list)

    @staticmethod
    def reason_of(report: pytest.TestReport) -> str:
        longrepr: Any = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            return str(longrepr[2]).removeprefix("Skipped: ")
        return str(longrepr)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = self.reason_of(report)
            if not accepted(reason):
                self.unexpected.append((report.nodeid, reason))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.strict and self.unexpected and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.strict and self.unexpected):
            return
        terminalreporter.section("skips CI does not accept", red=True)
        for nodeid, reason in self.unexpected:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(
            "A test may skip only through tests.harness.skips.needs_program or optional_data."
        )


def add_option(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fail-on-skip",
        action="store_true",
        help="fail the run when a test is skipped for a reason CI does not accept "
        "(on by default when CI is true)",
    )


def install(config: pytest.Config) -> None:
    strict = bool(config.getoption("--fail-on-skip")) or strict_from_environment()
    config.pluginmanager.register(SkipGuard(strict=strict), "mapt-skip-guard")


if __name__ == "__main__":
    # The Debian packages .ci/run installs before the tests.
    print(" ".join(sorted(set(SYSTEM_PROGRAMS.values()))))
    sys.exit(0)
