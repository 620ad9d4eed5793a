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


# Values providers compute on create, so outputs built from them are known under mocks.
FAKE_CREATED_AT = "2026-11-01T12:00:00Z"
FAKE_PASSWORD = "Fake-Passw0rd#forTests"
FAKE_PRIVATE_KEY_PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nFAKE-KEY-FOR-TESTS\n-----END RSA PRIVATE KEY-----\n"
)
FAKE_PUBLIC_KEY = "ssh-rsa AAAAB3NzaFAKEKEYFORTESTS mapt-test"
FAKE_EIP = "203.0.113.10"
FAKE_PRIVATE_IP = "10.0.2.15"


def default_computed(type_token: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Provider-computed attributes of the resources target programs declare."""
    if type_token == "tls:index/privateKey:PrivateKey":
        return {
            "privateKeyPem": FAKE_PRIVATE_KEY_PEM,
            "privateKeyOpenssh": FAKE_PRIVATE_KEY_PEM,
            "publicKeyOpenssh": FAKE_PUBLIC_KEY + "\n",
        }
    # No mapt program declares one any more (Windows takes EC2's password); answered so
    # that a program which did would show FAKE_PASSWORD, which test_aws_host_secrets hunts.
    if type_token == "random:index/randomPassword:RandomPassword":
        return {"result": FAKE_PASSWORD}
    if type_token == "time:index/static:Static":
        return {"rfc3339": FAKE_CREATED_AT}
    if type_token == "aws:ec2/eip:Eip":
        return {"publicIp": FAKE_EIP, "allocationId": "eipalloc-0123456789"}
    if type_token == "aws:ec2/instance:Instance":
        return {"privateIp": inputs.get("privateIp") or FAKE_PRIVATE_IP, "publicIp": FAKE_EIP}
    if type_token == "aws:ec2/keyPair:KeyPair":
        return {"keyName": inputs.get("keyName") or "mapt-test-key"}
    if type_token == "aws:sqs/queue:Queue":
        return {
            "arn": f"arn:aws:sqs:us-east-1:123456789012:{inputs.get('name') or 'mapt-test'}",
            "url": f"https://sqs.us-east-1.amazonaws.com/123456789012/{inputs.get('name') or 'q'}",
        }
    if type_token == "aws:cloudwatch/eventRule:EventRule":
        return {"arn": "arn:aws:events:us-east-1:123456789012:rule/mapt-test", "name": "mapt-test"}
    if type_token in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup"):
        kind = type_token.rsplit(":", 1)[-1].lower()
        return {"arn": f"arn:aws:elasticloadbalancing:us-east-1:123456789012:{kind}/mapt-test"}
    return {}


class PulumiHarness:
    """Runs programs under a fresh ``RecordingMocks`` each time and keeps the last one."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.mocks = RecordingMocks(default_answers(region), default_computed)

    def run(
        self, program: Callable[[], None], *, preview: bool = False, stack: str = "test"
    ) -> ProgramRun:
        self.mocks = RecordingMocks(default_answers(self.region), default_computed)
        return run_program(
            program, project="mapt-test", stack=stack, mocks=self.mocks, preview=preview
        )
