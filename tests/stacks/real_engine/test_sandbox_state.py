"""The sandbox engine's checkpoints and the real CLI's are one format, both ways.

The sandbox writes state itself (``mapt.stacks._sandbox``); the Pulumi CLI must list
it, decrypt its secrets with the same passphrase and export it (which checks the
snapshot's integrity: every dependency, parent and provider before its dependents),
and the sandbox must read what the CLI wrote, secrets included.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pulumi

from mapt.stacks import PASSPHRASE_FILE_NAME, PulumiEngine, StackRef
from tests.harness.spot_market import ApiCallLog
from tests.stacks.real_engine.conftest import RealCli
from tests.stacks.test_sandbox import SECRET_VALUE, engine, network


def cli(real_cli: RealCli, state: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(state / PASSPHRASE_FILE_NAME),
    }
    done = subprocess.run(
        [str(real_cli.path), *args, "--non-interactive"],
        capture_output=True,
        text=True,
        env=env,
        cwd=real_cli.tmp,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_reads_and_decrypts_what_the_sandbox_wrote(
    real_cli: RealCli, aws: ApiCallLog, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    ref = StackRef("demo", "host", f"file://{state}")
    outputs = engine().up(ref, network(secret=True))

    stack = "organization/demo/host-demo"
    shown = json.loads(
        cli(real_cli, state, "stack", "output", "-s", stack, "--show-secrets", "--json")
    )
    assert shown == outputs and shown["password"] == SECRET_VALUE
    exported = json.loads(cli(real_cli, state, "stack", "export", "-s", stack, "--show-secrets"))
    types = [r["type"] for r in exported["deployment"]["resources"]]
    assert types[0] == "pulumi:pulumi:Stack"
    assert {"pulumi:providers:aws", "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet"} <= set(types)


def test_the_sandbox_reads_and_decrypts_what_the_cli_wrote(
    real_cli: RealCli, tmp_path: Path
) -> None:
    ref = StackRef("demo", "host", f"file://{tmp_path / 'state'}")

    def program() -> None:
        pulumi.export("host", "10.0.0.5")
        pulumi.export("id_rsa", pulumi.Output.secret(SECRET_VALUE))

    PulumiEngine(progress_stream=io.StringIO(), live=False).up(ref, program)

    sandbox = engine()
    assert sandbox.exists(ref)
    assert sandbox.outputs(ref) == {"host": "10.0.0.5", "id_rsa": SECRET_VALUE}
    assert sandbox.destroy(ref) is True  # a stack with no resource: nothing to call
    assert not sandbox.exists(ref)
