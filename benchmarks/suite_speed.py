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

The tests are also summed per tier (``TIERS``: what makes a test costly, e.g. a real
server with worker processes, a moto_server, a Pulumi CLI, hypothesis' examples), with
their count and CPU seconds, so that a regression shows as a figure of one tier. The
CPU of a server shared by a module's tests is counted in the test that stops it.

Run: ``python benchmarks/suite_speed.py [pytest arguments, e.g. tests/cli or -n 2]``;
the README's command is ``python benchmarks/suite_speed.py -n logical --dist loadfile``.
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
# The first that matches names a test's tier: a path prefix of its node id, or a kind
# the plugin records ("hypothesis": a property test, "real_engine": the marker).
TIERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("real engine (Pulumi CLI)", ("kind:real_engine", "tests/stacks/real_engine/")),
    ("service on the sandbox (mapt serve --sandbox, moto_server)", (
        "tests/service/test_interruptions.py", "tests/service/test_pools_sandbox.py",
        "tests/service/test_reconciler.py", "tests/service/test_event_intake.py",
    )),
    ("service: real servers, worker processes", (
        "tests/service/test_executions.py", "tests/service/test_hosts.py",
        "tests/service/test_pools.py", "tests/service/test_tokens.py",
        "tests/service/test_serve_command.py", "tests/service/test_leader.py",
        "tests/client/", "tests/cli/test_host_server.py",
    )),
    ("sandbox end to end (moto_server)", (
        "tests/sandbox/", "tests/targets/test_aws_sandbox.py", "tests/cli/test_aws_failures.py",
    )),
    ("hypothesis properties", ("kind:hypothesis",)),
    ("CLI (in-process and subprocesses)", ("tests/cli/",)),
    ("service: library and database", ("tests/service/",)),
    ("stacks (in-process engines, fake CLI)", ("tests/stacks/",)),
    ("allocation, targets, hosts", ("tests/allocation/", "tests/targets/", "tests/hosts/")),
    ("everything else", ("",)),
)  # fmt: skip


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
            kinds = [
                kind
                for kind, found in (
                    ("real_engine", item.get_closest_marker("real_engine") is not None),
                    (
                        "hypothesis",
                        getattr(getattr(item, "obj", None), "is_hypothesis_test", False),
                    ),
                )
                if found
            ]
            entry = {"test": item.nodeid, "cpu": _cpu_seconds() - started, "kinds": kinds}
            line = json.dumps(entry)
            with open(record, "a") as out:  # one short append per line: workers share it
                out.write(line + "\n")


# -- the script ------------------------------------------------------------------------
def tier_of(entry: dict[str, Any]) -> str:
    """The name of the first of ``TIERS`` that a recorded test matches."""
    marks = [f"kind:{kind}" for kind in entry.get("kinds", [])]
    for name, prefixes in TIERS:
        for prefix in prefixes:
            if prefix in marks or (
                not prefix.startswith("kind:") and entry["test"].startswith(prefix)
            ):
                return name
    raise AssertionError("the last tier matches every test")


def print_tiers(per_test: list[dict[str, Any]]) -> None:
    """Count and CPU seconds of each tier, most CPU first."""
    counts: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for entry in per_test:
        tier = tier_of(entry)
        counts[tier] += 1
        seconds[tier] += entry["cpu"]
    total = sum(seconds.values()) or 1.0
    print(f"\n== CPU per tier\n{'tier':<44} {'tests':>6} {'CPU s':>8} {'share':>6}")
    for tier, cpu in seconds.most_common():
        print(f"{tier:<44} {counts[tier]:>6} {cpu:>8.1f} {cpu / total:>6.0%}")


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
        print_tiers(per_test)
    print(f"\npytest exit code: {run.returncode}")
    print(f"CPU: {cpu:.1f} s (user {usage.ru_utime:.1f} s, system {usage.ru_stime:.1f} s)")
    print(f"wall: {wall:.1f} s")
    print(f"CPU / target ({TARGET_CPU_SECONDS:.0f} s): {cpu / TARGET_CPU_SECONDS:.2f}")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
