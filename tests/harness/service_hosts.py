"""The host operations of ``mapt serve`` on simulated AWS and a shared in-memory engine.

Executions run in worker processes, one per execution, so the tests' stand-ins must
live there too: each host operation is wrapped to start moto's AWS with the replayed
spot market and the Fedora images (as the CLI tests' fixtures do), and to act through
an in-memory engine whose stacks persist in a file, so that the create, the resize and
the delete of one host (three processes) see the same stacks, as Pulumi's state would.
"""

from __future__ import annotations

import functools
import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from mapt.service import ExecutionContext, Operation
from mapt.service._hosts import (
    host_operations,
    run_create,
    run_delete,
    run_recover,
    run_refresh_ip,
    run_update,
)
from mapt.service._pools import pool_operations, run_add, run_refresh
from mapt.stacks import InMemoryEngine, StackRef
from mapt.targets.aws import HOST_ADDRESS_TYPE
from tests.harness.pulumi_mocks import default_answers, default_computed

if TYPE_CHECKING:
    from tests.harness.service import ServerProcess
    from tests.harness.spot_market import MarketRow

_PERSISTED = ("exists", "outputs", "preview", "destroy", "force_unlock", "list_stacks",
              "purge_project_state")  # fmt: skip


class FileBackedEngine(InMemoryEngine):
    """The in-memory engine, its stacks loaded from and saved to ``path`` around each call.

    Its Elastic IPs keep their address from ``up`` to ``up``, as deployed ones do, and
    get a new one when an ``up`` replaces them (``replace``): the address is counted
    per stack, in the file too.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(answers=default_answers(), computed=self._computed_here)
        self._path = path
        self._file_lock = FileLock(f"{path}.lock")
        self._replaced_addresses: dict[str, int] = {}
        self._stack_now = ""

    def _computed_here(self, type_token: str, inputs: Any) -> dict[str, Any]:
        values = default_computed(type_token, inputs)
        times = self._replaced_addresses.get(self._stack_now, 0)
        if type_token == HOST_ADDRESS_TYPE and times:
            values["publicIp"] = f"192.0.2.{times}"
        return values

    def _around(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._file_lock:
            if self._path.exists():
                self._stacks, self._locks, self._replaced_addresses = pickle.loads(
                    self._path.read_bytes()
                )
            try:
                return call(*args, **kwargs)
            finally:
                # Whole or not at all: a write cut short (its worker stopped midway, by
                # a cancel or a kill) leaves a short file, and every later call on the
                # server fails reading it (EOFError: 5 tests of test_hosts.py in one
                # run of main at a8325e3, at load 10 to 16).
                state = (self._stacks, self._locks, self._replaced_addresses)
                written = self._path.with_name(f"{self._path.name}.new")
                written.write_bytes(pickle.dumps(state))
                os.replace(written, self._path)

    def up(self, ref: StackRef, program: Any, **options: Any) -> dict[str, Any]:
        if ref.stack_name.startswith("host-"):
            _held_until_released(ref.stack_name.removeprefix("host-"))

        def replacing() -> dict[str, Any]:
            self._stack_now = ref.stack_name
            if any(f"::{HOST_ADDRESS_TYPE}::" in urn for urn in options.get("replace", ())):
                self._replaced_addresses[ref.stack_name] = (
                    self._replaced_addresses.get(ref.stack_name, 0) + 1
                )
            return InMemoryEngine.up(self, ref, program, **options)

        return dict(self._around(replacing))

    def stored_stacks(self) -> list[str]:
        """The stacks that exist now, as the file holds them."""
        return list(self._around(self.stack_names))


# A test that must stop a create midway (its server killed, or the create cancelled,
# while a worker runs it) holds that host's create: the server's environment names a
# folder here, and the test writes ``<folder>/<host>.hold`` first. Each ``up`` of that
# host's stack (after the create's spot allocation stack is up) then writes
# ``<host>.held`` and waits until ``<host>.release`` exists; other hosts' ups go on, so a
# module's shared server serves such a test too. The worker's own stop (its server's
# lifeline read end of file, a SIGTERM to itself) interrupts the wait, as it would a
# real ``up``.
HOLD_HOST_UP = "MAPT_TEST_HOLD_HOST_UP"
_HOLD_LIMIT = 600.0


def _held_until_released(host: str) -> None:
    import time

    folder = os.environ.get(HOLD_HOST_UP)
    if not folder or not (Path(folder) / f"{host}.hold").exists():
        return
    (Path(folder) / f"{host}.held").touch()
    release = Path(folder) / f"{host}.release"
    deadline = time.monotonic() + _HOLD_LIMIT
    while not release.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{release} did not appear in {_HOLD_LIMIT:.0f} s")
        time.sleep(0.05)


def hold_host_up(server: ServerProcess, host: str) -> tuple[Path, Path]:
    """Hold ``host``'s create on ``server`` (its environment names ``HOLD_HOST_UP``)
    before its host stack's ``up``: the file its worker writes once held there, and the
    file that releases it."""
    folder = Path(server.env[HOLD_HOST_UP])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{host}.hold").touch()
    return folder / f"{host}.held", folder / f"{host}.release"


def _persisted(name: str) -> Callable[..., Any]:
    def method(self: FileBackedEngine, *args: Any, **kwargs: Any) -> Any:
        return self._around(getattr(InMemoryEngine, name).__get__(self), *args, **kwargs)

    method.__name__ = name
    return method


for _name in _PERSISTED:
    setattr(FileBackedEngine, _name, _persisted(_name))


# The regions with the Fedora image (the replayed market scores a zone in each), and two
# without it (left out of the ranking for that). The other regions of the partition stay
# listed as not opted in: an allocation makes a client, a moto backend and its queries
# in each enabled region, which was most of an execution's CPU with all of them enabled.
# The service's tests check what the service does with an allocation's answer, not how
# many regions it scans (``tests/allocation`` scans them all), as the CLI tests'
# ``enabled_regions`` (``tests/cli/conftest.py``). The sandbox modules' moto_server opts
# in the same regions (``sandbox_service``).
IMAGE_REGIONS = ("us-east-1", "eu-north-1", "ap-south-1", "us-west-2")
ENABLED_REGIONS = frozenset({*IMAGE_REGIONS, "eu-west-1", "ap-northeast-1"})


@functools.cache
def market_rows() -> list[MarketRow]:
    """The replayed market's rows, read once a process (read-only: every market of the
    process serves them); the test server's forkserver reads them for its workers."""
    from tests.harness.spot_market import load_rows

    return load_rows()


@contextmanager
def simulated_aws() -> Iterator[None]:
    """moto's AWS with the replayed market and the Fedora images, in this process."""
    import boto3
    from moto import mock_aws
    from moto.ec2.models.availability_zones_and_regions import Region, RegionsAndZonesBackend

    from tests.cli.host_harness import FEDORA_41, FEDORA_OWNER, SCORED
    from tests.harness.boto import FAKE_CREDENTIALS
    from tests.harness.images import publish_image
    from tests.harness.moto_threads import serialize_in_process_moto
    from tests.harness.spot_market import SpotMarket, installed

    nowhere = str(Path(tempfile.gettempdir()) / "mapt-test-no-aws-config")
    os.environ.update(
        FAKE_CREDENTIALS,
        AWS_CONFIG_FILE=nowhere,
        AWS_SHARED_CREDENTIALS_FILE=nowhere,
        MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION="true",
        MOTO_ENABLE_AMI_VALIDATION="true",
        MOTO_EC2_LOAD_DEFAULT_AMIS="false",
    )
    boto3.DEFAULT_SESSION = None
    RegionsAndZonesBackend.regions = [
        region
        if region.name in ENABLED_REGIONS
        else Region(region.name, region.endpoint, "not-opted-in")
        for region in RegionsAndZonesBackend.regions
        if not region.name.startswith(("cn-", "us-gov-", "us-iso"))
    ]
    serialize_in_process_moto()
    with mock_aws():
        market = SpotMarket(rows=market_rows())
        market.scores = dict(SCORED)
        with installed(market.handlers()):
            for region in IMAGE_REGIONS:
                publish_image(region, FEDORA_41, FEDORA_OWNER)
            yield


# A folder where each simulated operation's worker writes what its run cost (how the
# figures of "Suite speed" in specs/concepts/architecture.md are taken): the worker's
# CPU seconds before and during the run, and the modules the run imported; with
# ``MAPT_TEST_WORKER_PROFILE=1``, a cProfile of the run too (which doubles its CPU).
_CPU_FOLDER = "MAPT_TEST_WORKER_CPU"
_PROFILE = "MAPT_TEST_WORKER_PROFILE"


@contextmanager
def _measured(context: ExecutionContext) -> Iterator[None]:
    import cProfile
    import sys
    import time

    folder = Path(os.environ[_CPU_FOLDER])
    name = f"{context.name}-{context.execution_id}"
    imported = set(sys.modules)
    profile = cProfile.Profile() if os.environ.get(_PROFILE) == "1" else None
    started = time.process_time()
    if profile is not None:
        profile.enable()
    try:
        yield
    finally:
        used = time.process_time() - started
        if profile is not None:
            profile.disable()
            profile.dump_stats(folder / f"{name}.prof")
        new = sorted(set(sys.modules) - imported)
        (folder / f"{name}.txt").write_text(
            f"cpu before {started:.3f} s, run {used:.3f} s\n" + "".join(f"{m}\n" for m in new)
        )


def _simulated(context: ExecutionContext, operation: Callable[[ExecutionContext], Any]) -> Any:
    with _measured(context) if _CPU_FOLDER in os.environ else nullcontext(), simulated_aws():
        return operation(context)


def simulated_create(context: ExecutionContext) -> Any:
    return _simulated(context, run_create)


def simulated_update(context: ExecutionContext) -> Any:
    return _simulated(context, run_update)


def simulated_delete(context: ExecutionContext) -> Any:
    return _simulated(context, run_delete)


def simulated_refresh_ip(context: ExecutionContext) -> Any:
    return _simulated(context, run_refresh_ip)


def simulated_recover(context: ExecutionContext) -> Any:
    return _simulated(context, run_recover)


def simulated_add(context: ExecutionContext) -> Any:
    return _simulated(context, run_add)


def simulated_pool_refresh(context: ExecutionContext) -> Any:
    return _simulated(context, run_refresh)


# What ``simulated_aws`` and the operations import when they run (moto's EC2 models alone
# are a second of CPU: botocore's service models, parsed at import), imported once by
# the server's forkserver instead of by every worker (``Operation.preload``; mapt's own
# come with mapt's operations). ``service_preload`` comes first, before anything makes a
# botocore session: it shares one loader for the rest (and builds what workers reuse).
# This module itself comes last: each job names its operation here.
SIMULATED_AWS_MODULES = (
    "tests.harness.service_preload", "boto3",
    "moto.ec2.models.availability_zones_and_regions", "tests.cli.host_harness",
    "tests.harness.boto", "tests.harness.images", "tests.harness.moto_threads",
    "tests.harness.spot_market", "tests.harness.service_hosts",
)  # fmt: skip


def simulated_operations() -> dict[str, Operation]:
    """mapt's host and pool operations, each run on simulated AWS and the file-backed
    engine."""
    operations = {
        **host_operations(
            create=simulated_create,
            update=simulated_update,
            delete=simulated_delete,
            recover=simulated_recover,
            refresh_ip=simulated_refresh_ip,
        ),
        **pool_operations(simulated_add, simulated_pool_refresh),
    }
    return {
        name: replace(operation, preload=(*SIMULATED_AWS_MODULES, *operation.preload))
        for name, operation in operations.items()
    }
