"""What ``mapt ... --help`` loads: every command path of the app, and the modules each imports.

Shared by ``tests/cli/test_startup.py`` and ``benchmarks/cli_startup.py``. The paths
come from the app itself, so a new command is covered without listing it. Each help
runs in a child forked from one fresh interpreter that has imported only
``mapt.cli`` (what every ``mapt`` run imports first), so what a help adds is seen as
in a fresh ``mapt`` process, without starting an interpreter per command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# Too heavy for help (seconds of import between them) or never needed to print it:
# the cloud SDKs, the Pulumi SDK and providers, and the libraries only commands use.
HEAVY = (
    "pulumi",
    "pulumi_aws",
    "pulumi_tls",
    "pulumiverse_time",
    "boto3",
    "botocore",
    "paramiko",
    "httpx",
    "pydantic",
    "pydantic_core",
)

_PROBE = """
import json, os, sys
from mapt.cli import main
results = {}
for path in json.loads(sys.argv[1]):
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        sys.argv = ["mapt", *path, "--help"]
        code = 0
        try:
            main()
        except SystemExit as exit:
            code = exit.code or 0
        sys.stdout.flush()
        os.write(write, json.dumps({"code": code, "modules": sorted(sys.modules)}).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        results[" ".join(path)] = json.loads(answer.read())
    os.waitpid(child, 0)
print(json.dumps(results))
"""


def command_paths(app: Any) -> list[tuple[str, ...]]:
    """Every group and command of ``app``, as the words after ``mapt`` (root: ``()``)."""
    import typer.main

    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if not sub.hidden:
                walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def help_imports(paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], list[str]]:
    """The modules loaded once ``mapt <path> --help`` has printed, by path.

    Raises ``AssertionError`` if a help exits with a code other than 0.
    """
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(paths)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    answers = json.loads(probe.stdout)
    found: dict[tuple[str, ...], list[str]] = {}
    for path in paths:
        answer = answers[" ".join(path)]
        assert answer["code"] == 0, f"mapt {' '.join(path)} --help exited {answer['code']}"
        found[path] = answer["modules"]
    return found


def heavy_roots(modules: list[str]) -> list[str]:
    """The ``HEAVY`` packages among ``modules`` (by top-level name)."""
    roots = {module.split(".")[0] for module in modules}
    return [name for name in HEAVY if name in roots]
