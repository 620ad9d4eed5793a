"""A cancel that races a claim, made deterministic: the claim is run by a second
``Executions`` (another server's connection) exactly between the cancel's read of the
row and its write, through a hook on the cancel's own statements, with no timing.

Only PostgreSQL lets the two interleave: on SQLite every transaction begins with
``BEGIN IMMEDIATE``, so the cancel holds the write lock from its read on and a claim
waits for it to commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from mapt.service import open_database
from mapt.service._database import Database
from mapt.service._executions import Execution, Executions, ExecutionStatus
from tests.harness.postgres import needs_postgres

pytestmark = needs_postgres()


@pytest.fixture
def databases(postgres_url: str) -> Iterator[tuple[Database, Database]]:
    """Two connections to one database: the cancelling server's and the claiming one's."""
    first, second = open_database(postgres_url), open_database(postgres_url, migrate=False)
    try:
        yield first, second
    finally:
        first.dispose()
        second.dispose()


def test_a_claim_between_the_cancels_read_and_write_asks_the_worker_to_stop(
    databases: tuple[Database, Database],
) -> None:
    cancelling, claiming = Executions(databases[0]), Executions(databases[1])
    submitted = cancelling.submit("test.sleep", "host-a", {"seconds": 1})
    claims: list[Execution | None] = []

    def claim_before_the_first_write(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE") and not claims:
            claims.append(claiming.claim("server-b", ["test.sleep"]))

    sa.event.listen(databases[0].engine, "before_cursor_execute", claim_before_the_first_write)
    try:
        answered = cancelling.cancel(submitted.id)
    finally:
        sa.event.remove(databases[0].engine, "before_cursor_execute", claim_before_the_first_write)

    claimed = claims[0]
    assert claimed is not None and claimed.id == submitted.id  # the claim came in between
    # The execution runs on the other server, and its worker hears the cancel.
    assert answered.status is ExecutionStatus.RUNNING and answered.cancel_requested
    held, cancel = claiming.heartbeat(submitted.id, claimed.claim or "")
    assert held and cancel
    lines = [line.message for line in cancelling.log(submitted.id)]
    assert "cancelled before it started" not in lines
    assert lines[-1] == "cancel requested; stopping at a safe point"
