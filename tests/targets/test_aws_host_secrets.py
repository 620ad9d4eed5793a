"""No secret in what the host program declares: user data, launch templates, any input.

Every kind of host that takes a secret is rendered under Pulumi mocks with its secrets
set. The test reads every resource input (secret-wrapped ones included: Pulumi
encrypts those in state, but EC2 shows user data and launch templates decoded to
anyone allowed to describe them) and every output, looking for each secret as it is
and base64-encoded, and inside every base64 document (user data is sent encoded).
Only an output Pulumi marks secret may hold one: the Windows password, once recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from mapt.allocation import AllocationResult
from mapt.core import RunContext
from mapt.integrations.github import RunnerScope, RunnerSpec
from mapt.stacks import ProgramRun
from mapt.targets.aws import HostRequest, HostSetup, host_output_names, host_program
from tests.harness.pulumi_mocks import FAKE_PASSWORD, PulumiHarness

CTX = RunContext("ci-7")
SPOT = AllocationResult(
    region="eu-west-1",
    availability_zone="eu-west-1b",
    availability_zone_id="euw1-az3",
    instance_types=("m6i.2xlarge",),
    spot_price=0.12,
    max_price=0.16,
    score=9,
)
ON_DEMAND = replace(SPOT, spot_price=None, max_price=None, score=None)
SUBSCRIPTION_PASSWORD = "Sub-Pässwörd-🔑-Secret42"
RUNNER_TOKEN = "AREGTOKENSECRETXYZ7QXJ2KBWZPM4"
WINDOWS_PASSWORD = "Ec2-Generated-Passw0rd-9f3b"
RUNNER = RunnerSpec(RunnerScope.for_repo("acme/app"), RUNNER_TOKEN, "mapt-ci-7", ("gpu",))

REQUESTS = {
    "rhel-subscription": HostRequest(
        "rhel", rh_subscription_username="dev@example.com",
        rh_subscription_password=SUBSCRIPTION_PASSWORD,
    ),
    "rhel-subscription-runner-airgap": HostRequest(
        "rhel", rh_subscription_username="dev@example.com",
        rh_subscription_password=SUBSCRIPTION_PASSWORD, runner=RUNNER, airgap=True,
    ),
    "fedora-runner": HostRequest("fedora", runner=RUNNER),
    "rhel-runner": HostRequest("rhel", runner=RUNNER),
    "windows": HostRequest("windows"),
    "windows-runner": HostRequest("windows", runner=RUNNER),
}  # fmt: skip
# FAKE_PASSWORD is what a random.RandomPassword resource would give under the mocks: a
# Windows password generated in the stack and set from user data.
SECRETS = (SUBSCRIPTION_PASSWORD, RUNNER_TOKEN, WINDOWS_PASSWORD, FAKE_PASSWORD)


def spellings(secret: str) -> list[str]:
    """The secret as it is and JSON-escaped, and the base64 of each at every alignment."""
    found = [secret, json.dumps(secret)[1:-1]]
    for text in list(found):
        raw = text.encode()
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + raw).decode()
            # Keep only the characters made of the secret's bits alone.
            start = (8 * shift + 5) // 6
            found.append(encoded[start : len(encoded) - 4])
    return found


def texts(value: Any) -> Iterator[str]:
    """Every string inside ``value``, and the decoding of every string that is base64."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from texts(item)
    elif value is not None:
        text = value if isinstance(value, str) else json.dumps(value)
        yield text
        compact = re.sub(r"\s", "", text)
        if len(compact) >= 16 and re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", compact):
            try:
                decoded = base64.b64decode(compact, validate=True)
            except (binascii.Error, ValueError):
                decoded = b""
            yield decoded.decode("utf-8", "replace")


def leaks(run: ProgramRun) -> list[str]:
    """Where a secret shows, outside outputs marked secret."""
    found = []
    places: list[tuple[str, Any]] = [(f"{r.type} {r.name}", r.inputs) for r in run.resources]
    places += [(f"output {name}", o.value) for name, o in run.outputs.items() if not o.secret]
    for where, value in places:
        for text in texts(value):
            for secret in SECRETS:
                if any(spelling in text for spelling in spellings(secret)):
                    found.append(f"{where} holds {secret[:4]}...")
    return found


@pytest.mark.parametrize("allocation", [SPOT, ON_DEMAND], ids=["spot", "ondemand"])
@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_no_secret_is_in_any_resource_or_plain_output(
    kind: str, allocation: AllocationResult
) -> None:
    request = REQUESTS[kind]
    harness = PulumiHarness()
    first = harness.run(host_program(CTX, allocation, request))
    assert leaks(first) == []
    # The user data is there, and it is plain text now: nothing to hide in it.
    user_data = [
        r.inputs["userData"]
        for r in first.resources
        if r.type in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance")
        and r.name in ("host-template", "host")
    ]
    assert len(user_data) == 1 and isinstance(user_data[0], str)

    # After delivery the stack records what was done: only the password, as a secret.
    setup = HostSetup(
        "i-0123456789abcdef0",
        runner_id=77 if request.runner else None,
        password=WINDOWS_PASSWORD if request.is_windows else None,
        runner_scope=request.runner.scope.api_path if request.runner else None,
    )
    recorded = harness.run(host_program(CTX, allocation, request, setup=setup))
    assert leaks(recorded) == []
    spot = allocation.spot_price is not None
    assert set(recorded.outputs) == set(host_output_names(request, spot=spot, configured=True))
    outputs = recorded.plain_outputs()
    assert outputs["configured_instance"] == "i-0123456789abcdef0"
    if request.is_windows:
        assert recorded.outputs["userpassword"].secret
        assert outputs["userpassword"] == WINDOWS_PASSWORD
    if request.runner is not None:
        assert (outputs["runner_id"], outputs["runner_scope"]) == (77, "/repos/acme/app")


def test_the_leak_finder_finds_a_secret_in_base64_user_data() -> None:
    """The check above can fail: a secret inside encoded user data is found."""
    document = base64.b64encode(f"#cloud-config\npassword: {SUBSCRIPTION_PASSWORD}\n".encode())
    assert any(SUBSCRIPTION_PASSWORD in text for text in texts(document.decode()))
    for secret in SECRETS:
        for shift in range(3):
            encoded = base64.b64encode(b"x" * shift + secret.encode() + b"y").decode()
            assert any(s in encoded for s in spellings(secret)[2:]), (secret, shift)
    escaped = json.dumps({"password": SUBSCRIPTION_PASSWORD})  # \u00e4..., as JSON writes it
    assert SUBSCRIPTION_PASSWORD not in escaped
    assert any(s in escaped for s in spellings(SUBSCRIPTION_PASSWORD))
