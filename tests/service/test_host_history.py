"""Host history on a real server: a create run by a worker opens the host's interval at
the place it was deployed, a delete ends it (the intervals ``/costs`` prices)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from mapt.service import open_database
from mapt.service._schema import host_intervals
from tests.cli.host_harness import FAMILIES
from tests.harness.service import ServerProcess, make_token


def test_a_created_then_deleted_host_has_one_closed_interval_where_it_ran(
    server: ServerProcess, tmp_path: Path
) -> None:
    fields = {
        "name": "pr-5",
        "os": "fedora",
        "spot": True,
        "cpus": 2,
        "memory": 8,
        "compute_families": FAMILIES,
        "backed_url": f"file://{tmp_path / 'state'}",
    }
    with server.client(make_token(server.database_url, "ci")) as client:
        created = client.post("/v1/hosts?wait=true&timeout=240", json=fields, timeout=300)
        assert created.json()["execution"]["status"] == "succeeded", created.text
        allocation = client.get("/v1/hosts/pr-5").json()["host"]["allocation"]
        deleted = client.delete("/v1/hosts/pr-5?wait=true&timeout=240", timeout=300)
        assert deleted.json()["execution"]["status"] == "succeeded", deleted.text
    database = open_database(server.database_url)
    try:
        with database.transaction() as connection:
            rows = [dict(row._mapping) for row in connection.execute(sa.select(host_intervals))]
    finally:
        database.dispose()
    (row,) = rows
    assert (row["host"], row["start_reason"], row["end_reason"]) == ("pr-5", "created", "deleted")
    assert (row["region"], row["availability_zone"]) == (
        allocation["region"],
        allocation["availability_zone"],
    )
    assert row["instance_types"] == allocation["instance_types"]
    assert (row["spot"], row["product"], row["airgap"]) == (True, "Linux/UNIX", False)
    assert row["started_at"] < row["ended_at"]
