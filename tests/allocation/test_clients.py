"""What each of a ranking's clients costs to make, beyond what botocore must do.

A refused ranking makes a client per usable region (34 with every region enabled), so
per-client work sits on its critical path: the environment's proxy variables are read
once per ranking, not twice per client, and each EC2 client's connection pools hold
what one region's queries send at once, not the pricing client's hundred.
"""

from __future__ import annotations

import os
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config

from mapt.allocation import Ec2Queries
from mapt.allocation._ec2 import EC2_CONNECTIONS_PER_CLIENT, PRICING_REGION

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-north-1", "ap-south-1", "sa-east-1")


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def _proxy_of(client: Any) -> str | None:
    """The proxy botocore sends this client's requests through, if any."""
    proxies = client._endpoint.http_session._proxy_config
    return proxies.proxy_url_for(client.meta.endpoint_url)  # type: ignore[no-any-return]


def test_a_rankings_clients_read_the_environments_proxy_variables_once(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans: list[None] = []
    scan = urllib.request.getproxies_environment

    def counted() -> dict[str, str]:
        scans.append(None)
        return scan()

    monkeypatch.setattr(urllib.request, "getproxies_environment", counted)
    queries = Ec2Queries(session)
    clients = [queries.client(region) for region in REGIONS]
    assert len(scans) <= 1  # botocore alone: one a client that this counts, and another
    assert [_proxy_of(client) for client in clients] == [None] * len(REGIONS)


def test_a_proxy_named_in_the_environment_is_still_botocores_to_apply(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "ec2.eu-west-1.amazonaws.com")
    queries = Ec2Queries(session)
    assert _proxy_of(queries.client("us-east-1")) == "http://127.0.0.1:3128"
    assert _proxy_of(queries.client("eu-west-1")) is None  # NO_PROXY, as botocore reads it


def test_a_proxy_in_the_sessions_default_client_config_is_kept(session: boto3.Session) -> None:
    session._session.set_default_client_config(Config(proxies={"https": "http://127.0.0.1:3129"}))
    assert _proxy_of(Ec2Queries(session).client("us-east-1")) == "http://127.0.0.1:3129"


@pytest.mark.parametrize("max_workers", [128, 4])
def test_ec2_clients_pools_hold_one_regions_queries_and_the_pricing_clients_every_batch(
    session: boto3.Session, max_workers: int
) -> None:
    queries = Ec2Queries(session, max_workers=max_workers)
    ec2 = queries.client("eu-west-1").meta.config.max_pool_connections
    pricing = queries.client(PRICING_REGION, "pricing").meta.config.max_pool_connections
    assert (ec2, pricing) == (min(max_workers, EC2_CONNECTIONS_PER_CLIENT), max_workers)
