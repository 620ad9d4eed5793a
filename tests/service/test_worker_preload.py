"""The host workers' forkserver loads what the host program uses (``Operation.preload``).

pulumi_aws loads a submodule on its first use, so a preload that only names
``pulumi_aws`` leaves every worker to load ``aws.ec2`` (about a second of CPU) again;
a preload that leaves out the operations' own modules leaves every worker of
``mapt serve`` to import ``mapt.service`` (and SQLAlchemy) to unpickle its function.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mapt.targets.aws
from mapt.service import InterruptionSettings
from mapt.service._hosts import HOST_WORKER_MODULES, host_operations
from mapt.service._interruptions import interruption_operations
from mapt.service._pools import pool_operations

# The modules of the host program (the events stack's program is the leader's, not a
# host worker's).
_PROGRAM_FILES = ("_base.py", "_compute.py", "_dns.py", "_host.py", "_network.py")
# Run in a fresh interpreter, as a forkserver is: which modules are loaded.
_IMPORTED = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""
# Which pulumi_aws submodules are loaded
# (a lazy one is still pulumi's module subclass, a loaded one a plain module).
_LOADED = """
import importlib, json, sys, types
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(
    name.split(".")[1] for name, module in sys.modules.items()
    if name.count(".") == 1 and name.startswith("pulumi_aws.") and type(module) is types.ModuleType
)))
"""


def test_the_host_workers_preload_loads_every_pulumi_aws_submodule_the_program_uses() -> None:
    folder = Path(mapt.targets.aws.__file__).parent
    used = {
        submodule
        for file in _PROGRAM_FILES
        for submodule in re.findall(r"\baws\.([a-z0-9_]+)\.", (folder / file).read_text())
    }
    assert {"ec2", "autoscaling", "lb"} <= used  # the scan finds what the program declares
    answer = subprocess.run(
        [sys.executable, "-c", _LOADED, *HOST_WORKER_MODULES],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    loaded = set(json.loads(answer.stdout))
    assert used <= loaded, f"the preload leaves these for every worker: {sorted(used - loaded)}"


def test_mapt_serves_workers_start_with_their_operations_modules_imported() -> None:
    """``mapt serve``'s forkserver imports its main module (``mapt.__main__``) and the
    declared preload: the module of each operation's function, and the workers' own
    that runs it, must be among them, or each worker imports them to unpickle it."""
    operations = {
        **host_operations(),
        **pool_operations(),
        **interruption_operations(InterruptionSettings()),
    }
    needed = {"mapt.service._workers"} | {
        getattr(operation.run, "func", operation.run).__module__
        for operation in operations.values()
    }
    assert {"mapt.service._hosts", "mapt.service._pools", "mapt.service._interruptions"} <= needed
    preloads = {operation.preload for operation in operations.values()}
    assert preloads == {HOST_WORKER_MODULES}
    answer = subprocess.run(
        [sys.executable, "-c", _IMPORTED, "mapt.__main__", *HOST_WORKER_MODULES],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    missing = needed - set(json.loads(answer.stdout))
    assert not missing, f"every worker imports these again: {sorted(missing)}"


# After the preload, how many botocore data files a new session's clients of the
# sandbox's services read (each one a parse every worker repeated).
_FILES_READ = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
from mapt.core import aws_session
from mapt.targets.aws import SANDBOX_SERVICES
from tests.harness.boto import record_model_reads
read = record_model_reads()
session = aws_session()
for service in SANDBOX_SERVICES:
    session.client(service, region_name="eu-west-1")
print(len(read), *(path for _, path in read))
"""


def test_a_host_worker_starts_with_the_models_of_its_clients_parsed() -> None:
    """A worker's sessions share one botocore loader (``mapt.core.aws_session``) and the
    forkserver parsed the models into it: a worker's new session reads no file again."""
    answer = subprocess.run(
        [sys.executable, "-c", _FILES_READ, *HOST_WORKER_MODULES],
        capture_output=True, text=True, check=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )  # fmt: skip
    assert answer.stdout.split()[0] == "0", f"every worker parses these again: {answer.stdout}"


# Whether importing the preload made boto3's default session, whose config snapshot
# (region, profile, role) every worker would inherit.
_DEFAULT_SESSION = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
import boto3
print(boto3.DEFAULT_SESSION is None)
"""


def test_the_preload_reads_no_aws_configuration_and_survives_a_bad_one(tmp_path: Path) -> None:
    """The forkserver dies on any error but ``ImportError`` from its preload, and with it
    every execution: a profile that does not exist or a config file that does not parse
    must leave each operation to report it, when it calls AWS. And the preload makes no
    default session, so a worker reads the config files as they are when it runs."""
    broken = tmp_path / "config"
    broken.write_text("[profile broken\nregion = eu-west-1\n")
    for bad in ({"AWS_PROFILE": "no-such-profile"}, {"AWS_CONFIG_FILE": str(broken)}):
        answer = subprocess.run(
            [sys.executable, "-c", _DEFAULT_SESSION, *HOST_WORKER_MODULES],
            capture_output=True, text=True, env={**os.environ, **bad},
        )  # fmt: skip
        assert answer.returncode == 0, f"{bad}: {answer.stderr[-2000:]}"
        assert answer.stdout.split() == ["True"], bad
