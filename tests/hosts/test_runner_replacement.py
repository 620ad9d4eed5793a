"""A host's GitHub runner follows its machine: a replaced machine is registered again.

The create path runs as the service's recovery runs it (``AwsHostTarget.create`` on the
host's API fields, with ``HostServices``): the in-memory engine and the stubbed Auto
Scaling stand in for Pulumi and AWS; the machine is the real sshd on 127.0.0.1 of the
setup tests, whose instance id and runner folder change when the "machine" is replaced.
The runner's ``config.sh`` stand-in registers on the fake GitHub server with the token
it reads from its environment, as the real one does, and records whether any process
had the token in its command line.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mapt.hosts import AwsHostTarget, HostServices, create_request
from mapt.stacks import StackRef
from mapt.targets import SshAccess
from mapt.targets.aws import HostRequest, HostSetup, configure_host
from tests.cli.host_harness import FAMILIES, Harness
from tests.harness.skips import needs_program
from tests.harness.spot_market import SpotMarket
from tests.integrations.fake_github import (
    RUNNER_REGISTRATION_PATH,
    FakeGitHub,
    FakeGitHubServer,
)
from tests.targets.sshd import SSHD, KeyPair, SshServer, new_rsa_key
from tests.targets.test_host_setup import _SCAN, Host, _executable, access, sha

pytestmark = needs_program(SSHD)

ACCESS_TOKEN = "ghp_" + "r" * 36
SCOPE = "/repos/acme/app"
FIRST, SECOND = "i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2"

# config.sh: where the real one registers with GitHub, this one asks the fake server
# (the token from ACTIONS_RUNNER_INPUT_TOKEN, sent in a header: no command line holds
# it), then writes .runner with the id GitHub answered, as the real one does.
_REGISTER = """
import json, os, sys, urllib.request
args = sys.argv[1:]
name = args[args.index("--name") + 1]
request = urllib.request.Request(
    {url!r}, method="POST",
    data=json.dumps({{"name": name}}).encode(),
    headers={{"Authorization": "RemoteAuth " + os.environ["ACTIONS_RUNNER_INPUT_TOKEN"],
             "Content-Type": "application/json"}},
)
with urllib.request.urlopen(request, timeout=30) as answer:
    agent = json.load(answer)["id"]
with open(".runner", "w") as file:
    json.dump({{"agentId": agent, "agentName": name, "poolId": 1}}, file)
"""


class Machines:
    """The host's machines, one after another, behind one sshd; the current one is set up."""

    def __init__(self, host: Host, key: KeyPair, root: Path, registration_url: str) -> None:
        self.host, self.key, self.root = host, key, root
        self.registration = root / "register.py"
        self.registration.write_text(_REGISTER.format(url=registration_url))
        self.configured: list[str] = []
        self.use(FIRST)

    def use(self, instance: str) -> None:
        """The machine is now ``instance``, with a runner installed and not configured."""
        self.instance = instance
        self.runner_dir = self.root / instance
        self.runner_dir.mkdir()
        _executable(
            self.runner_dir / "config.sh",
            "#!/bin/bash\nset -e\n" + _SCAN
            + f'echo "config.sh on {instance} $(report "$ACTIONS_RUNNER_INPUT_TOKEN")" '
            + f'>> "{self.host.log}"\n'
            + f'exec {sys.executable} {self.registration} "$@"\n',
        )  # fmt: skip
        _executable(
            self.runner_dir / "svc.sh", f'#!/bin/bash\necho "svc.sh $*" >> "{self.host.log}"\n'
        )
        self.host.server.set_cloud_init(0, instance)

    def setup(self, access_: SshAccess, request: HostRequest, outputs: Any) -> HostSetup:
        """The real delivery over SSH, to whichever machine the host now is."""
        self.configured.append(self.instance)
        return configure_host(access(self.host, self.key), request, runner_dir=str(self.runner_dir))


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return new_rsa_key()


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.fresh_registration_tokens = True
    fake.tokens.add(ACCESS_TOKEN)
    fake.add_scope(SCOPE, ["other-runner"])
    with FakeGitHubServer(fake) as server:
        # The server's own credentials, from its environment.
        monkeypatch.setenv("GITHUB_API_URL", server.api_url)
        monkeypatch.setenv("GITHUB_TOKEN", ACCESS_TOKEN)
        for name in ("GH_TOKEN", "GITHUB_SERVER_URL"):
            monkeypatch.delenv(name, raising=False)
        yield fake


@pytest.fixture
def machines(tmp_path: Path, key: KeyPair, github: FakeGitHub) -> Iterator[Machines]:
    server = SshServer(tmp_path, [key.public_openssh])
    yield Machines(
        Host(server, tmp_path), key, tmp_path, github.base_url + RUNNER_REGISTRATION_PATH
    )
    server.stop()


def recover(cli: Harness, machines: Machines) -> Any:
    """``hosts.recover``'s create: the host's API fields, through the library."""
    services = HostServices(
        engine=cli._engine,
        readiness=cli._readiness,
        launch=cli.auto_scaling.launch,
        setup=machines.setup,
    )
    fields = {
        "name": "demo", "os": "fedora", "backed_url": cli.backend, "spot": True, "cpus": 2,
        "memory": 8, "compute_families": FAMILIES, "ghactions_runner_repo": "acme/app",
        "ghactions_runner_labels": ["gpu"],
    }  # fmt: skip
    return AwsHostTarget(services).create(create_request(fields))


def ours(github: FakeGitHub) -> list[tuple[int, str]]:
    return [
        (r["id"], r.get("token", "")) for r in github.runners[SCOPE] if r["name"] == "mapt-demo"
    ]


def outputs(cli: Harness) -> dict[str, Any]:
    return cli.engine.outputs(StackRef("demo", "host", cli.backend))


def user_data(cli: Harness) -> str:
    ref = StackRef("demo", "host", cli.backend)
    (template,) = [r for r in cli.engine.resources(ref) if r.type.endswith("LaunchTemplate")]
    return base64.b64decode(template.inputs["userData"]).decode()


def test_a_replaced_machine_registers_a_new_runner_and_the_old_one_is_removed(
    cli: Harness, market: SpotMarket, github: FakeGitHub, machines: Machines,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    recover(cli, machines)
    ((old_id, first_token),) = ours(github)
    assert (outputs(cli)["runner_id"], outputs(cli)["configured_instance"]) == (old_id, FIRST)

    machines.use(SECOND)  # the spot instance was replaced: a new machine, no .runner
    record = recover(cli, machines)

    # A fresh registration token was asked for, and the new machine registered with it.
    assert github.registration_tokens_issued == 2
    ((new_id, second_token),) = ours(github)
    assert second_token != first_token and new_id != old_id
    assert github.unused_registration_tokens == {}
    # The old runner was removed by the id the stack recorded; no other runner was touched.
    deletes = [r.path for r in github.requests if r.method == "DELETE"]
    assert deletes == [f"{SCOPE}/actions/runners/{old_id}"]
    assert [r["name"] for r in github.runners[SCOPE]] == ["other-runner", "mapt-demo"]
    # The stack now records the new runner on the new machine (destroy removes that one).
    assert (outputs(cli)["runner_id"], outputs(cli)["configured_instance"]) == (new_id, SECOND)
    assert record.runner_name == "mapt-demo" and machines.configured == [FIRST, SECOND]
    # The token reached the machine on standard input only: in no process's command line,
    # not in user data, not in any log record, not in the stack's outputs.
    configs = [line for line in machines.host.recorded() if line.startswith("config.sh")]
    assert configs == [
        f"config.sh on {FIRST} sha={sha(first_token)} argv-clean",
        f"config.sh on {SECOND} sha={sha(second_token)} argv-clean",
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"runner 'mapt-demo' (id {old_id}) deregistered from repository acme/app" in logged
    for token in (first_token, second_token):
        assert token not in user_data(cli)
        assert token not in logged
        assert token not in json.dumps(outputs(cli), default=str)


def test_an_old_runner_already_gone_is_not_an_error_and_the_same_machine_keeps_its_runner(
    cli: Harness, market: SpotMarket, github: FakeGitHub, machines: Machines
) -> None:
    recover(cli, machines)
    ((old_id, _),) = ours(github)

    recover(cli, machines)  # the same machine: its runner is configured, nothing changes
    assert ours(github)[0][0] == old_id == outputs(cli)["runner_id"]
    assert not [r for r in github.requests if r.method == "DELETE"]

    github.runners[SCOPE] = [r for r in github.runners[SCOPE] if r["id"] != old_id]
    machines.use(SECOND)
    recover(cli, machines)  # removing the old runner finds it gone: the create succeeds

    ((new_id, _),) = ours(github)
    assert outputs(cli)["runner_id"] == new_id != old_id
    deletes = [r.path for r in github.requests if r.method == "DELETE"]
    assert deletes == [f"{SCOPE}/actions/runners/{old_id}"]
