"""How much CPU does the test suite take, and which tests take most of it?

Runs ``python -m pytest`` (plus any arguments given) in a child process and prints the
CPU seconds it used (user + system, the child and its own children), the wall time, and
the ratio to the target: the whole suite in under 90 s on the project's 2-core
machines. CPU time, unlike wall time, barely moves when other jobs share the machine.
pytest's ``--durations=15`` list follows, to show where the time goes.

Run: ``python benchmarks/suite_speed.py [pytest arguments, e.g. tests/cli]``.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

TARGET_CPU_SECONDS = 90.0
ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=15"]
    started = time.monotonic()
    run = subprocess.run([*command, *argv], cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    lines = run.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if "slowest" in line), len(lines))
    print("\n".join(lines[start:]))
    print(f"pytest exit code: {run.returncode}")
    print(f"CPU: {cpu:.1f} s (user {usage.ru_utime:.1f} s, system {usage.ru_stime:.1f} s)")
    print(f"wall: {wall:.1f} s")
    print(f"CPU / target ({TARGET_CPU_SECONDS:.0f} s): {cpu / TARGET_CPU_SECONDS:.2f}")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
