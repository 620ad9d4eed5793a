"""mapt's botocore sessions load a CA bundle once, not once per HTTPS connection.

Against a moto_server serving TLS on 127.0.0.1 with a certificate from a test CA
(trustme): the bundle a client verifies with is that CA's certificate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mapt.core import aws_session
from tests.harness.moto_server import loopback_certificate, moto_server
from tests.harness.rounds import recording_bundle_loads


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(the endpoint of a moto_server over TLS, a bundle holding its CA)."""
    folder = tmp_path_factory.mktemp("tls")
    chain, key, authority_pem = loopback_certificate(folder)
    bundle = folder / "bundle.pem"
    bundle.write_bytes(authority_pem)
    with moto_server(tls=(chain, key)) as endpoint:
        yield endpoint, bundle


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The CA files loaded into any SSL context from now on."""
    import mapt.core._aws_sessions as sessions

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(sessions, "_trusted", {}, raising=False)  # none kept before
    with recording_bundle_loads() as loaded:
        yield loaded


def _zone_names(endpoint: str, bundle: Path, region: str, calls: int = 1) -> list[str]:
    client = aws_session().client(
        "ec2", region_name=region, endpoint_url=endpoint, verify=str(bundle)
    )
    return [
        client.describe_availability_zones()["AvailabilityZones"][0]["RegionName"]
        for _ in range(calls)
    ]


def test_clients_of_a_ranking_load_the_bundle_once(
    authority: tuple[str, Path], loads: list[str]
) -> None:
    """Each call here opens a connection (the server closes each), as each client of a
    ranking does at least once, and OpenSSL 3 parses certifi's bundle in about 40 ms:
    urllib3 loaded it into the client's context for every connection."""
    endpoint, bundle = authority
    regions = ["eu-west-1", "us-east-2", "ap-south-1", "sa-east-1"]
    answered = [name for region in regions for name in _zone_names(endpoint, bundle, region, 3)]
    assert answered == [region for region in regions for _ in range(3)]
    assert loads == [str(bundle)]


def test_a_bundle_without_the_servers_authority_is_still_refused(
    authority: tuple[str, Path], loads: list[str], tmp_path: Path
) -> None:
    """Sharing the loaded bundle keeps verification: a client whose bundle lacks the
    server's CA fails, after another bundle's context was made and used."""
    import trustme
    from botocore.exceptions import SSLError

    endpoint, bundle = authority
    assert _zone_names(endpoint, bundle, "eu-west-1") == ["eu-west-1"]
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        _zone_names(endpoint, stranger, "eu-west-1")
    assert loads == [str(bundle), str(stranger)]


def test_a_bundle_rewritten_on_disk_is_loaded_again(
    authority: tuple[str, Path], loads: list[str], tmp_path: Path
) -> None:
    """A long-lived ``mapt serve`` sees a renewed bundle in the clients it makes next."""
    import trustme
    from botocore.exceptions import SSLError

    endpoint, bundle = authority
    renewed = tmp_path / "bundle.pem"
    renewed.write_bytes(bundle.read_bytes())
    assert _zone_names(endpoint, renewed, "eu-west-1") == ["eu-west-1"]
    stranger = trustme.CA().cert_pem.bytes()
    renewed.write_bytes(stranger)  # another size: the server's CA is gone
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        _zone_names(endpoint, renewed, "eu-west-1")
    assert loads == [str(renewed), str(renewed)]


def test_a_session_loaded_ahead_sends_its_first_request_with_the_bundle_loaded(
    authority: tuple[str, Path], loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``host create`` loads the EC2 model while it checks the Pulumi CLI, and a service
    worker's forkserver loads the models once: the bundle is loaded there too, not on
    the ranking's first request (``models_loading``, ``load_client_data``)."""
    from mapt.allocation import models_loading

    endpoint, bundle = authority
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    with models_loading(aws_session) as made:
        pass
    assert loads == [str(bundle)]
    client = made.result().client("ec2", region_name="eu-west-1", endpoint_url=endpoint)
    assert client.describe_availability_zones()["AvailabilityZones"]
    assert loads == [str(bundle)]


@pytest.fixture
def trust_as_shipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's ``URLLib3Session`` as it ships, and mapt's sharing to be installed
    afresh: so that a test sees whether its own path installs it, not whether an
    earlier test in the process did."""
    import functools

    from botocore.httpsession import URLLib3Session

    import mapt.core._aws_sessions as sessions

    for name in ("_get_ssl_context", "_setup_ssl_cert"):
        method = getattr(URLLib3Session, name)
        monkeypatch.setattr(URLLib3Session, name, getattr(method, "__wrapped__", method))
    if hasattr(sessions, "_trust_store_shared"):
        fresh = functools.cache(sessions._trust_store_shared.__wrapped__)
        monkeypatch.setattr(sessions, "_trust_store_shared", fresh)


@pytest.mark.usefixtures("trust_as_shipped")
def test_host_list_reads_s3_stacks_in_parallel_loading_the_bundle_once(
    authority: tuple[str, Path], loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``host list`` reads the stacks of an S3 backend in parallel, a connection each
    (up to 256): each loaded the bundle, 40 ms of CPU with certifi's (202 loads for
    200 stacks in ``benchmarks/host_list.py``; 40 stacks here)."""
    import json

    import boto3
    from typer.testing import CliRunner

    from mapt.cli import app
    from tests.stacks.test_inventory import checkpoint

    endpoint, bundle = authority
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    seeding = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    seeding.create_bucket(Bucket="tls-state")
    for index in range(40):
        project = f"p{index:03d}"
        body = checkpoint(project, f"host-{project}", {"region": "eu-west-1"}, 1)
        key = f"ci/.pulumi/stacks/{project}/host-{project}.json"
        seeding.put_object(Bucket="tls-state", Key=key, Body=body)
    loads.clear()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a fresh process's
    backend = f"s3://tls-state/ci?region=us-east-1&endpoint={endpoint}"
    result = CliRunner().invoke(
        app, ["aws", "host", "list", "--backed-url", backend, "--output", "json"]
    )
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["hosts"]) == 40
    assert loads == [str(bundle)]


@pytest.mark.usefixtures("trust_as_shipped")
def test_a_ranking_given_a_callers_own_session_loads_the_bundle_once(
    authority: tuple[str, Path], loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Pulumi program that passes its own ``boto3.Session`` to ``mapt.allocation``."""
    import boto3

    from mapt.allocation._ec2 import Ec2Queries

    endpoint, bundle = authority
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    queries = Ec2Queries(boto3.Session())
    regions = ["eu-west-1", "us-east-2", "ap-south-1", "sa-east-1"]
    assert [queries.zones(region)[0].region for region in regions] == regions
    assert loads == [str(bundle)]
