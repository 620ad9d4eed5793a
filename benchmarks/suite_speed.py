"""How much CPU does the test suite take, and which tests take most of it?

Runs ``python -m pytest`` (plus any arguments given) in a child process and prints the
CPU seconds it used (user + system, the child and its own children, xdist workers
included), the wall time, and the ratio to the target: the whole suite in under 90 s
on the project's 2-core machines. CPU time, unlike wall time, barely moves when other
jobs share the machine, so the lists below are CPU too: this module is also loaded
into the run as a pytest plugin (``-p suite_speed``) that measures each test's CPU
seconds (its process's threads, plus the child processes it waited for), and the
tests and files that took most are printed. pytest's ``--durations`` (wall) is still
passed, for the tests that mostly wait.

Run: ``python benchmarks/suite_speed.py [pytest arguments, e.g. tests/cli or -n 2]``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

TARGET_CPU_SECONDS = 90.0
ROOT = Path(__file__).resolve().parents[1]
_RECORD_VARIABLE = "MAPT_SUITE_SPEED_RECORD"
SHOWN = 15


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- the plugin, inside the pytest run (and each xdist worker) --------------------------
try:
    import pytest
except ImportError:  # the script itself needs no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: Any, nextitem: Any) -> Generator[None, None, None]:
        """Record the CPU seconds of one test: setup, call and teardown."""
        record = os.environ.get(_RECORD_VARIABLE)
        started = _cpu_seconds()
        yield
        if record:
            line = json.dumps({"test": item.nodeid, "cpu": _cpu_seconds() - started})
            with open(record, "a") as out:  # one short append per line: workers share it
                out.write(line + "\n")


# -- the script ------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "suite_speed",
        f"--durations={SHOWN}",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "cpu.jsonl"
        paths = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
        env[_RECORD_VARIABLE] = str(record)
        started = time.monotonic()
        run = subprocess.run([*command, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        recorded = record.read_text().splitlines() if record.exists() else []
        per_test = [json.loads(line) for line in recorded]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    lines = run.stdout.splitlines()
    # From the failures (when a test failed), else from the durations, to the end.
    marks = ("= FAILURES =", "= ERRORS =", "slowest")
    start = next((i for i, line in enumerate(lines) if any(m in line for m in marks)), len(lines))
    print("\n".join(lines[start:]))
    if per_test:
        total = sum(t["cpu"] for t in per_test)
        print(f"\n== most CPU per test ({len(per_test)} tests, {total:.1f} s in all)")
        for entry in sorted(per_test, key=lambda t: -t["cpu"])[:SHOWN]:
            print(f"{entry['cpu']:7.2f} s  {entry['test']}")
        files: Counter[str] = Counter()
        for entry in per_test:
            files[entry["test"].split("::")[0]] += entry["cpu"]
        print("\n== most CPU per file")
        for name, seconds in files.most_common(SHOWN):
            print(f"{seconds:7.2f} s  {name}")
    print(f"\npytest exit code: {run.returncode}")
    print(f"CPU: {cpu:.1f} s (user {usage.ru_utime:.1f} s, system {usage.ru_stime:.1f} s)")
    print(f"wall: {wall:.1f} s")
    print(f"CPU / target ({TARGET_CPU_SECONDS:.0f} s): {cpu / TARGET_CPU_SECONDS:.2f}")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
