"""Importing the targets' public surface stays light: the CLI builds requests with it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_targets_loads_neither_pulumi_nor_paramiko_nor_boto3() -> None:
    code = (
        "import sys, mapt.targets, mapt.targets.aws\n"
        "heavy = [m for m in ('pulumi', 'pulumi_aws', 'pulumi_tls', 'pulumi_random',"
        " 'pulumiverse_time', 'paramiko', 'boto3', 'botocore') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
