"""How fast does every ``mapt ... --help`` answer next to a bare interpreter, and what loads?

Targets (issue #15, on a 2-core machine): ``mapt --help`` median <= 0.2 s, every
subcommand's ``--help`` <= 0.3 s, and no help imports the cloud SDKs, Pulumi or
pydantic (``tests/harness/startup.py`` lists them; ``tests/cli/test_startup.py`` checks it).

Wall times on a shared machine swing with its load, so every help run is paired with
a bare ``python -c pass`` started just before it, and the runs of all commands are
interleaved round by round: a busy moment slows both halves of a pair alike. Per
command it prints the median wall time, the median CPU time (user + system of the
child, which load changes far less), the median of the paired ratios help/bare, and
the modules imported. The verdict is on the CPU median: a help is one thread reading
cached files, so on an idle machine its wall time is its CPU time; on a loaded one
the wall time also counts the time spent waiting for a core (the bare pairs show
how much). A one-option Typer app's ``--help``, with plain help as mapt's, is timed
the same way, as the floor that Typer sets (it is most of a help's time).

mapt's modules are compiled to bytecode first (``compileall``), as ``pip install``
does: a checkout run under ``PYTHONDONTWRITEBYTECODE`` (as on the CI machines)
would otherwise compile every module from source on every start, some 0.1 s that no
installed mapt pays.

Run: ``python benchmarks/cli_startup.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT_TARGET = 0.2
SUBCOMMAND_TARGET = 0.3
FLOOR = "typer floor"
_FLOOR_APP = """
import typer
app = typer.Typer(rich_markup_mode=None)
@app.callback()
def root(debug: bool = False) -> None: ...
@app.command()
def run() -> None: ...
app()
"""


def timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of ``command``."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11, help="pairs per command")
    options = parser.parse_args()

    from mapt.cli import app
    from tests.harness.startup import command_paths, heavy_roots, help_imports

    paths = command_paths(app)
    bare = [sys.executable, "-c", "pass"]
    helps: dict[tuple[str, ...], list[str]] = {
        path: [sys.executable, "-m", "mapt", *path, "--help"] for path in paths
    }
    helps[(FLOOR,)] = [sys.executable, "-c", _FLOOR_APP, "--help"]
    import mapt

    compileall.compile_dir(Path(mapt.__file__).parent, quiet=1)
    for command in helps.values():  # warm the file cache
        timed(command)
    pairs: dict[tuple[str, ...], list[tuple[float, float, float, float]]] = {p: [] for p in helps}
    for _ in range(options.runs):
        for path, command in helps.items():
            bare_wall, bare_cpu = timed(bare)
            wall, cpu = timed(command)
            pairs[path].append((wall, cpu, bare_wall, bare_cpu))
    imports = help_imports(paths)

    every_bare = [run[2] for runs in pairs.values() for run in runs]
    every_bare_cpu = [run[3] for runs in pairs.values() for run in runs]
    bare_wall = statistics.median(every_bare)
    bare_cpu = statistics.median(every_bare_cpu)
    print(
        f"bare `python -c pass`: median wall {bare_wall:.3f} s, CPU {bare_cpu:.3f} s "
        f"({options.runs} pairs per command, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f})"
    )
    header = (
        f"{'command':<28} {'wall':>6} {'cpu':>6} {'ratio':>6} {'added':>6} "
        f"{'target':>6} {'modules':>7}  verdict"
    )
    print(header)
    over = []
    for path, runs in pairs.items():
        wall = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        ratio = statistics.median(run[0] / run[2] for run in runs)
        added = statistics.median(run[0] - run[2] for run in runs)
        name = " ".join(("mapt", *path, "--help"))
        if path == (FLOOR,):
            print(f"{FLOOR:<28} {wall:>6.3f} {cpu:>6.3f} {ratio:>6.1f} {added:>6.3f}  (reference)")
            continue
        target = ROOT_TARGET if not path else SUBCOMMAND_TARGET
        heavy = heavy_roots(imports[path])
        ok = cpu <= target and not heavy
        if not ok:
            over.append(path)
        verdict = "ok" if ok else "OVER"
        if heavy:
            verdict += f" (imports {', '.join(heavy)})"
        print(
            f"{name:<28} {wall:>6.3f} {cpu:>6.3f} {ratio:>6.1f} {added:>6.3f} "
            f"{target:>6.2f} {len(imports[path]):>7}  {verdict}"
        )
    print(
        "wall, cpu: medians in seconds; ratio: median of help/bare per pair; added: median "
        "of help - bare per pair; verdict: cpu within target and no heavy import"
    )
    if bare_wall > 2 * bare_cpu + 0.01:
        print(
            f"note: the machine is loaded (bare start {bare_wall:.3f} s wall for "
            f"{bare_cpu:.3f} s CPU): trust cpu and ratio over wall"
        )
    print("all within target" if not over else f"OVER TARGET: {len(over)} of {len(paths)}")


if __name__ == "__main__":
    main()
