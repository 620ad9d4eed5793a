"""``mapt serve --dns-zone Z``: the zone of hosts created without a ``dns_zone`` field,
recorded in the host's fields (so its recoveries keep the name); a bad zone is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mapt.core import InputError
from mapt.service import ServerSettings, create_token, open_database
from mapt.service._app import Service, create_app

HOST = {"os": "fedora", "spot": True, "cpus": 2, "memory": 8}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app with the default zone, and no dispatcher: executions stay queued."""
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))
    database = open_database(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    token = create_token(database, "writer")[1]
    with TestClient(create_app(Service(database=database, dns_zone="ci.example.com"))) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def fields_of(api: TestClient, name: str) -> dict[str, object]:
    answer = api.get(f"/v1/hosts/{name}")
    assert answer.status_code == 200, answer.text
    fields: dict[str, object] = answer.json()["host"]["fields"]
    return fields


def test_a_host_created_without_a_zone_gets_the_servers(api: TestClient) -> None:
    answer = api.post("/v1/hosts", json={**HOST, "name": "named"})
    assert answer.status_code == 202, answer.text
    assert fields_of(api, "named")["dns_zone"] == "ci.example.com"


def test_a_hosts_own_zone_or_null_wins_over_the_servers(api: TestClient) -> None:
    assert api.post("/v1/hosts", json={**HOST, "name": "own", "dns_zone": "b.example.org"})
    assert fields_of(api, "own")["dns_zone"] == "b.example.org"
    assert api.post("/v1/hosts", json={**HOST, "name": "none", "dns_zone": None})
    assert fields_of(api, "none")["dns_zone"] is None


def test_a_bad_zone_field_is_refused_naming_the_field(api: TestClient) -> None:
    answer = api.post("/v1/hosts", json={**HOST, "name": "bad", "dns_zone": "not a zone"})
    assert answer.status_code == 422, answer.text
    assert "dns_zone 'not a zone'" in answer.text
    assert api.get("/v1/hosts/bad").status_code == 404


def test_serve_refuses_a_zone_that_is_no_domain_name() -> None:
    with pytest.raises(InputError, match="--dns-zone 'example'"):
        ServerSettings(dns_zone="example")


def test_an_air_gapped_host_gets_no_default_name_but_is_refused_one_it_asks_for(
    api: TestClient,
) -> None:
    airgapped = {**HOST, "spot": False, "airgap": True}
    answer = api.post("/v1/hosts", json={**airgapped, "name": "closed"})
    assert answer.status_code == 202, answer.text
    assert "dns_zone" not in fields_of(api, "closed")
    asked = api.post("/v1/hosts", json={**airgapped, "name": "asks", "dns_zone": "ci.example.com"})
    assert asked.status_code == 422, asked.text
    assert api.get("/v1/hosts/asks").status_code == 404
