"""The real-engine tier: mapt's stacks layer on a Pulumi CLI built from its Go module.

``scripts/build-pulumi-cli.sh`` builds the CLI into ``~/.cache/mapt-test/pulumi/<version>/bin``.
The tier uses ``$MAPT_TEST_PULUMI`` (the binary's path, as ``.ci/run`` exports it), else the
newest CLI in that cache. Without one the tests skip, except in CI (``CI=true``) on a machine
with ``go``, where a CLI must have been built and a skip would hide the whole tier: there
they fail.

Every test runs with a private ``TMPDIR`` and ``PULUMI_HOME`` (the CLI's and the SDK's), so
what a run leaves behind in either can be checked.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from semver import Version

from tests.harness.moto_server import moto_server as start_moto_server
from tests.harness.spot_market import ApiCallLog

CACHE = Path(os.environ.get("MAPT_TEST_CACHE", Path.home() / ".cache" / "mapt-test"))
BUILD_HINT = "build it with scripts/build-pulumi-cli.sh and export MAPT_TEST_PULUMI=<its output>"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tier; leave out what the CLI in use is too old for (``pulumi_since``).

    A behaviour only newer CLIs have (zstd checkpoints, ``AWS_ENDPOINT_URL_S3``) is not
    a skip on an older one: .ci/run runs the tier on the oldest CLI mapt accepts and
    then on the newest, so each such test runs where it applies and is deselected, and
    counted as such, where it does not.
    """
    here = Path(__file__).parent
    in_use = None
    kept, too_new = [], []
    for item in items:
        if not Path(str(item.fspath)).is_relative_to(here):
            kept.append(item)
            continue
        item.add_marker(pytest.mark.real_engine)
        since = item.get_closest_marker("pulumi_since")
        if since is not None:
            if in_use is None:
                path = built_cli()
                in_use = cli_version(path) if path is not None else ""
            if in_use and Version.parse(in_use) < Version.parse(since.args[0]):
                too_new.append(item)
                continue
        kept.append(item)
    if too_new:
        config.hook.pytest_deselected(items=too_new)
        items[:] = kept


def built_cli() -> Path | None:
    """The Pulumi CLI the tier runs on, or None when there is none."""
    named = os.environ.get("MAPT_TEST_PULUMI")
    if named:
        path = Path(named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"MAPT_TEST_PULUMI={named!r} is not an executable file; {BUILD_HINT}")
        return path

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parents[1].name.split("."))

    found = [p for p in CACHE.glob("pulumi/*.*.*/bin/pulumi") if os.access(p, os.X_OK)]
    return max(found, key=version) if found else None


@functools.cache
def cli_version(path: Path) -> str:
    """``3.276.0``: what ``pulumi version`` prints, without its ``v`` (asked once a run:
    each ask starts the Go CLI)."""
    printed = subprocess.run([str(path), "version"], capture_output=True, text=True, check=True)
    return printed.stdout.strip().lstrip("v")


@dataclass(frozen=True)
class RealCli:
    path: Path
    version: str
    home: Path  # this test's PULUMI_HOME
    tmp: Path  # this test's TMPDIR


@pytest.fixture
def real_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealCli]:
    """The built CLI, first on ``PATH`` (so mapt finds it as it would a user's)."""
    path = built_cli()
    if path is None:
        if os.environ.get("CI") == "true" and shutil.which("go"):
            pytest.fail(
                f"CI has go but no built Pulumi CLI: the real-engine tier cannot run; {BUILD_HINT}"
            )
        pytest.skip(f"no Pulumi CLI built for the real-engine tier; {BUILD_HINT}")
    version = cli_version(path)
    monkeypatch.setenv("PATH", f"{path.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
    # Each CLI start runs the Go package initialisers of the whole CLI (about 0.2 s of
    # CPU, a quarter of it collecting garbage they leave); the tier starts it a few
    # hundred times for programs with no resource. No collection below 1 GiB of heap:
    # what the CLI does is unchanged, only its memory is reclaimed later.
    monkeypatch.setenv("GOGC", "off")
    monkeypatch.setenv("GOMEMLIMIT", "1GiB")
    home = Path(os.environ["PULUMI_HOME"])  # private to the test (tests/stacks/conftest.py)
    tmp = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield RealCli(path, version, home, tmp)


def leftovers(cli: RealCli) -> list[str]:
    """What the run left in its TMPDIR and in Pulumi's per-directory workspace settings."""
    left = sorted(str(p) for p in cli.tmp.iterdir())
    workspaces = cli.home / "workspaces"
    if workspaces.is_dir():
        left += sorted(str(p) for p in workspaces.iterdir())
    return left


@pytest.fixture
def aws(aws_env: None, api_calls: ApiCallLog) -> Iterator[ApiCallLog]:
    """moto's in-process AWS, letting calls to servers on 127.0.0.1 through (moto_server)."""
    from moto import mock_aws

    from tests.harness.moto_threads import serialize_in_process_moto

    passthrough = {"urls": [r"http://127\.0\.0\.1:\d+.*"]}
    serialize_in_process_moto()
    with mock_aws(config={"core": {"passthrough": passthrough}}):  # type: ignore[typeddict-item]
        yield api_calls


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (its own process, as an S3-compatible store would be)."""
    with start_moto_server() as endpoint:
        yield endpoint
