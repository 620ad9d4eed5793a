"""Under CI, a skip other than a missing system program or optional data fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.skips import SYSTEM_PROGRAMS, accepted, needs_program
from tests.harness.spot_market import REPO_ROOT

CONFTEST = """
from tests.harness import skips

def pytest_addoption(parser):
    skips.add_option(parser)

def pytest_configure(config):
    skips.install(config)
"""
TESTS = """
import pytest
from pathlib import Path
from tests.harness.skips import optional_data

def test_runs():
    pass

def test_needs_outside_data():
    optional_data(Path("/nonexistent/mapt/vms.csv"))

def test_skips_for_no_good_reason():
    pytest.skip("the network is slow today")
"""


def run_pytest(folder: Path, *args: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PYTEST_")}
    # The sample needs no third-party plugin; not loading them saves ~1.5 s a run.
    env.update(PYTHONPATH=str(REPO_ROOT), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_sample.py").write_text(TESTS)
    return tmp_path


@pytest.mark.parametrize(
    "workers",
    # The README's and .ci/run's command runs xdist workers: the skips they report reach
    # the guard in the controller, which fails the run.
    [[], ["-p", "xdist", "-n", "2"]],
    ids=["one process", "xdist workers"],
)
def test_ci_fails_on_an_unexpected_skip_and_names_it(project: Path, workers: list[str]) -> None:
    run = run_pytest(project, *workers, ci="true")
    assert run.returncode == 1, run.stdout
    assert "skips CI does not accept" in run.stdout
    assert "test_skips_for_no_good_reason: the network is slow today" in run.stdout
    assert "test_needs_outside_data:" not in run.stdout  # optional data is accepted
    assert "1 passed, 2 skipped" in run.stdout


def test_outside_ci_a_skip_is_reported_but_does_not_fail(project: Path) -> None:
    assert run_pytest(project, ci="false").returncode == 0
    assert run_pytest(project, "--fail-on-skip", ci=None).returncode == 1


def test_only_declared_programs_and_optional_data_are_accepted() -> None:
    for program in SYSTEM_PROGRAMS:
        reason = needs_program(program).kwargs["reason"]
        assert accepted(reason) and SYSTEM_PROGRAMS[program] in reason
    assert accepted("optional data is absent: /x/vms.csv")
    assert not accepted("needs systemd-analyze")
    assert not accepted("the shared spot-market data is absent (../shared/...)")
