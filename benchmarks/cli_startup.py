"""How fast does ``mapt --help`` answer, and what does it import?

Prints the median wall time of ``mapt --help`` over several runs (target <= 0.3 s on
the project's 2-core machines) and the top-level packages it imported besides the
standard library, so a heavy import sneaking into start-up shows up by name.

Run: ``python benchmarks/cli_startup.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_SECONDS = 0.3
HEAVY = ("pulumi", "pulumi_aws", "boto3", "botocore", "paramiko", "moto")

_PROBE = """
import sys
from mapt.cli import main
sys.argv = ["mapt", "--help"]
try:
    main()
except SystemExit:
    pass
roots = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names))
print("IMPORTED", " ".join(roots), file=sys.stderr)
"""


def time_help(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mapt", "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def imported_packages() -> list[str]:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True
    )
    line = next(line for line in probe.stderr.splitlines() if line.startswith("IMPORTED"))
    return line.split()[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "mapt", "--help"], check=True, capture_output=True)
    times = time_help(args.runs)
    median = statistics.median(times)
    bare = statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(args.runs))
    packages = imported_packages()
    heavy = [p for p in packages if p in HEAVY]
    print(
        f"mapt --help: median {median:.3f} s over {args.runs} runs "
        f"(min {min(times):.3f} s, max {max(times):.3f} s); target <= {TARGET_SECONDS} s"
    )
    print(f"bare interpreter start: median {bare:.3f} s (ratio {median / bare:.1f}x)")
    print(f"third-party packages imported: {' '.join(packages)}")
    print(f"heavy packages imported: {' '.join(heavy) if heavy else 'none'}")
    print("within target" if median <= TARGET_SECONDS and not heavy else "OVER TARGET")


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
