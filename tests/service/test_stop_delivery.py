"""A stopping server's SIGTERM stops its worker's operation even where code drops it, and
a stop that lands while the worker stores a log line stores the line and then stops.

Before, the worker's stop was raised wherever its main thread was: in a query of the
log sink it left the connection busy, the rollback's failure replaced it and the sink
dropped that, and the server's single SIGTERM was lost; the operation ran on until the
server's grace ended and it killed the worker, the execution's end unrecorded.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import sqlalchemy as sa

from mapt.core import Interrupted, stopping_on_signals
from mapt.service import open_database
from mapt.service._executions import Executions
from mapt.service._schema import execution_logs
from tests.harness.postgres import on_sqlite_only
from tests.harness.service import ServerProcess, make_token, wait_for
from tests.harness.service_operations import journal


@on_sqlite_only()
def test_a_sigterm_the_operation_drops_still_stops_it_and_hands_the_execution_back(
    server: ServerProcess, tmp_path: Path
) -> None:
    """What the worker does with its stop is not SQL: SQLite only."""
    path = tmp_path / "j"
    body = {
        "name": "test.drop-a-stop",
        "target": "host-a",
        "arguments": {"journal": str(path), "seconds": 120},
    }
    with server.client(make_token(server.database_url, "ci")) as client:
        answer = client.post("/v1/test/executions", json=body)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: journal(path))
    server.signal(signal.SIGTERM)
    server.wait()
    assert [e["event"] for e in journal(path)] == ["waiting", "dropped", "start", "stop"]
    messages = [str(entry["message"]) for entry in server.log()]
    assert not [m for m in messages if "did not stop" in m], messages


def test_a_stop_while_a_log_line_is_stored_stores_it_then_stops(
    tmp_path: Path, database_url: str
) -> None:
    database = open_database(database_url)
    store = Executions(database)
    execution = store.submit("test.sleep", "host-a", {})

    signalled: list[int] = []

    def signal_mid_query(*_: object) -> None:
        if signalled:  # once: a second signal cuts the transaction short, by design
            return
        signalled.append(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # to this, the main, thread
        for _ in range(1000):  # bytecodes for the interpreter to run the handler at
            pass

    sa.event.listen(database.engine, "before_cursor_execute", signal_mid_query)
    try:
        with pytest.raises(Interrupted), stopping_on_signals():
            store.append_log(execution.id, "INFO", "step 1")
            pytest.fail("the stop was not raised once the line was stored")
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", signal_mid_query)
    with database.transaction() as connection:
        stored = connection.execute(sa.select(execution_logs.c.message)).scalars().all()
    database.dispose()
    assert "step 1" in stored
