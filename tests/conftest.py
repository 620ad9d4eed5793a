"""Fixtures every test layer uses: simulated AWS, the replayed spot market, Pulumi mocks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.harness import skips
from tests.harness.boto import FAKE_CREDENTIALS, shared_botocore
from tests.harness.moto_instance_types import serialize_instance_types_once
from tests.harness.moto_reset import discard_backends_on_reset
from tests.harness.moto_threads import serialize_in_process_moto
from tests.harness.pulumi_mocks import PulumiHarness
from tests.harness.spot_market import MARKET_CSV, ApiCallLog, SpotMarket, installed, load_rows
from tests.harness.typer_commands import built_once

# Hypothesis: no per-example deadline (the suite shares two cores; timing is noise, and
# speed is measured in benchmarks/), and each property sets its own example count for
# what it explores. Under CI a failure prints the blob that replays it, and no example
# database is kept on a throwaway machine. HYPOTHESIS_PROFILE picks another one, e.g.
# "thorough" for a long local search of the properties that set no count of their own.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, print_blob=True, database=None)
settings.register_profile("thorough", deadline=None, max_examples=2000)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if skips.strict_from_environment() else "dev")
)


def pytest_addoption(parser: pytest.Parser) -> None:
    skips.add_option(parser)


def pytest_configure(config: pytest.Config) -> None:
    skips.install(config)
    if not hasattr(config, "workerinput"):  # once, in the process that starts the run
        compile_mapt()


def compile_mapt() -> None:
    """Compile mapt's modules, and the test harness, to bytecode before any test starts
    a Python process.

    The suite starts hundreds (``mapt`` commands, ``mapt serve`` servers, their worker
    processes, the harness's test servers); under ``PYTHONDONTWRITEBYTECODE`` (set on the
    CI machines) each would otherwise compile every module it imports from source, about
    0.3 s of CPU for one that imports the service. An installed mapt is compiled by pip
    the same way.
    """
    import compileall

    import mapt

    compileall.compile_dir(os.path.dirname(mapt.__file__), quiet=1)
    compileall.compile_dir(os.path.join(os.path.dirname(__file__), "harness"), quiet=1)


@pytest.fixture(scope="session", autouse=True)
def one_botocore_loader() -> Iterator[None]:
    """Parse each AWS service model and build each client class once per run (speed)."""
    with shared_botocore():
        yield


@pytest.fixture(scope="session", autouse=True)
def one_click_tree() -> Iterator[None]:
    """Build the CLI's Click commands once per run, not per ``CliRunner.invoke`` (speed)."""
    with built_once():
        yield


@pytest.fixture(autouse=True)
def secrets_of_this_test_only() -> Iterator[None]:
    """Forget, after each test, the secrets it registered for redaction.

    The registry is process-wide (a real run registers each secret once); without this,
    a test's secret (a passphrase like ``known``) masks words in later tests' output.
    """
    from mapt.core import _logging

    before = set(_logging._secrets)
    yield
    with _logging._secrets_lock:
        _logging._secrets.intersection_update(before)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake credentials and moto's strict validation; no real AWS config is read.

    boto3's default session starts afresh: it keeps the credentials it first found,
    and mapt keeps its one S3 client with it (``mapt.stacks._backend.s3_client``), so
    a test that changes the environment would otherwise get an earlier test's client.
    """
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    empty = tmp_path_factory.mktemp("aws-config") / "none"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
    monkeypatch.setenv("MOTO_ENABLE_AMI_VALIDATION", "true")
    # moto reads these two when ``moto.settings`` is first imported, which a test module
    # importing moto at collection does before any fixture runs: set what it read too.
    from moto import settings as moto_settings

    monkeypatch.setattr(moto_settings, "EC2_ENABLE_INSTANCE_TYPE_VALIDATION", True)
    monkeypatch.setattr(moto_settings, "ENABLE_AMI_VALIDATION", True)
    # moto's ~1,300 bundled AMIs cost ~0.1 s per region touched; tests register their own.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def api_calls(aws_env: None) -> Iterator[ApiCallLog]:
    """Records every AWS API call made by boto3 clients created during the test."""
    log = ApiCallLog()
    with installed(log.handlers()):
        yield log


@pytest.fixture
def enabled_regions() -> frozenset[str] | None:
    """The regions the simulated account has enabled; None: all that need no opt-in.

    A test folder whose tests do not depend on how many regions there are overrides
    this with a few: every spot allocation makes a client, a moto backend and its
    queries in each enabled region, and about twenty of them is most of the CPU a
    CLI test takes. The other regions stay listed, as opt-in regions the account has
    not enabled (``OptInStatus`` not-opted-in), so names are still known everywhere.
    A real account cannot disable the regions launched before 2019; mapt still takes
    the usable ones from DescribeRegions (it only builds their clients early), so a
    shorter list changes how much is scanned, not how the answer is found.
    """
    return None


@pytest.fixture
def aws(
    aws_env: None,
    api_calls: ApiCallLog,
    monkeypatch: pytest.MonkeyPatch,
    enabled_regions: frozenset[str] | None,
) -> Iterator[ApiCallLog]:
    """moto's in-process AWS (``mock_aws``) with fake credentials; yields the call log.

    moto's DescribeRegions lists the China and GovCloud partitions too; an account
    sees only its own partition's regions, so they are left out (four fewer regions
    for every allocation to scan). ``enabled_regions`` can leave fewer enabled.
    """
    from moto import mock_aws
    from moto.ec2.models.availability_zones_and_regions import Region, RegionsAndZonesBackend

    own_partition = [
        region
        if enabled_regions is None or region.name in enabled_regions
        else Region(region.name, region.endpoint, "not-opted-in")
        for region in RegionsAndZonesBackend.regions
        if not region.name.startswith(("cn-", "us-gov-", "us-iso"))
    ]
    monkeypatch.setattr(RegionsAndZonesBackend, "regions", own_partition)
    serialize_in_process_moto()  # moto's models are not thread-safe; AWS's calls are atomic
    discard_backends_on_reset()  # moto's reset rebuilt every backend it then dropped
    serialize_instance_types_once()  # moto's catalogue is fixed; its answer cost seconds
    with mock_aws():
        yield api_calls


@pytest.fixture(scope="session")
def market_rows() -> list:  # type: ignore[type-arg]
    """The committed, generated market (tests/data/spot-market.csv.gz): no outside data."""
    return load_rows(MARKET_CSV)


@pytest.fixture
def spot_market(aws: ApiCallLog, market_rows: list) -> Iterator[SpotMarket]:  # type: ignore[type-arg]
    """The replayed spot market on top of ``aws``; set ``.scores`` etc. in the test."""
    market = SpotMarket(rows=market_rows)  # indexed once per session, not copied
    with installed(market.handlers()):
        yield market


@pytest.fixture
def pulumi_mocks() -> PulumiHarness:
    """Runs Pulumi programs in-process under recording mocks (see ``PulumiHarness``)."""
    return PulumiHarness()
