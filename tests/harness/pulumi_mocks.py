"""Pulumi mocks for tests: the product's ``RecordingMocks`` with answers for AWS invokes.

The dry-run engine and the tests share one recorder (``mapt.stacks.RecordingMocks``);
this module only adds canned answers for the provider functions target programs call,
so a test states what it checks instead of how to fake a lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mapt.stacks import ProgramRun, RecordingMocks, run_program

FAKE_AMI_ID = "ami-0123456789abcdef0"


def _get_ami(args: Mapping[str, Any]) -> dict[str, Any]:
    names = [
        value
        for flt in args.get("filters", [])
        if flt.get("name") == "name"
        for value in flt.get("values", [])
    ]
    return {
        "id": FAKE_AMI_ID,
        "imageId": FAKE_AMI_ID,
        "name": names[0].replace("*", "0") if names else "mapt-test-image",
        "architecture": "x86_64",
        "owners": args.get("owners", []),
        "rootDeviceName": "/dev/sda1",
    }


def default_answers(
    region: str = "us-east-1",
) -> dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]]:
    """Answers for the invokes AWS target programs make."""
    return {
        "aws:ec2/getAmi:getAmi": _get_ami,
        "aws:index/getRegion:getRegion": lambda _args: {
            "name": region,
            "region": region,
            "id": region,
        },
        "aws:index/getCallerIdentity:getCallerIdentity": lambda _args: {
            "accountId": "123456789012",
            "arn": "arn:aws:iam::123456789012:user/mapt-test",
            "userId": "AIDATEST",
            "id": "123456789012",
        },
    }


class PulumiHarness:
    """Runs programs under a fresh ``RecordingMocks`` each time and keeps the last one."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.mocks = RecordingMocks(default_answers(region))

    def run(
        self, program: Callable[[], None], *, preview: bool = False, stack: str = "test"
    ) -> ProgramRun:
        self.mocks = RecordingMocks(default_answers(self.region))
        return run_program(
            program, project="mapt-test", stack=stack, mocks=self.mocks, preview=preview
        )
