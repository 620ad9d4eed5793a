"""A clone with no ``../shared`` beside it runs the market tests: nothing is skipped.

The clone is a copy of the files git tracks (plus new, not ignored ones) in a temporary
folder, with ``MAPT_SHARED_DIR`` pointing at a folder that does not exist. Every test
that needs spot-market data gets it through the session's ``market_rows`` fixture, so
running the harness's own market tests and one end-to-end host test there proves the
committed data is enough; ``CI=true`` makes the skip guard fail the run on any skip it
does not accept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from tests.harness.spot_market import REPO_ROOT

MARKET_TESTS = (
    "tests/test_harness.py::test_market_serves_the_newest_price_of_a_known_row",
    "tests/test_harness.py::test_market_paginates_like_aws",
    "tests/test_harness.py::test_market_serves_given_placement_scores_best_first",
    "tests/cli/test_host.py::test_spot_create_runs_end_to_end_and_writes_connection_files",
)


def _clone(destination: Path) -> None:
    listed = subprocess.run(
        [
            "git",
            "-C",
            str(REPO_ROOT),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def test_a_clone_without_shared_data_skips_no_market_test(tmp_path: Path) -> None:
    clone = tmp_path / "checkout" / "mapt"
    _clone(clone)
    assert (clone / "tests" / "data" / "spot-market.csv.gz").is_file()
    assert not (clone.parent / "shared").exists()
    report = tmp_path / "report.xml"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "MAPT_", "HYPOTHESIS", "CI"))
    }
    # No third-party pytest plugin is needed by these tests; loading them costs ~1.5 s.
    env.update(
        CI="true", MAPT_SHARED_DIR=str(tmp_path / "no-shared"), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"
    )

    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
             f"--junitxml={report}", *MARKET_TESTS],
            cwd=clone, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        # A copy of the repository left in /tmp holds the test secrets some tests look
        # for there (tests/targets/test_host_setup.py): keep no copy.
        shutil.rmtree(clone.parent)

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    cases = list(ElementTree.parse(report).getroot().iter("testcase"))
    skipped = {
        f"{case.get('classname')}.{case.get('name')}": skip.get("message", "")
        for case in cases
        for skip in case.iter("skipped")
    }
    assert len(cases) == len(MARKET_TESTS) and skipped == {}
