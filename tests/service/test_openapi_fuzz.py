"""schemathesis against the app's own ``/openapi.json``: every operation it documents,
called in-process (ASGI) with a bounded number of generated requests, valid and
invalid ones, a write token on each. No request may make the server fail (500), and
every error is the service's JSON error shape, with a status of the errors table:
``{"error": {"type", "message", "exit_code"[, "field"]}}``.

The app runs without a dispatcher: what the requests submit stays pending, so a
generated ``?wait=true`` is given a short ``timeout`` (it would otherwise hold the
answer for as long as the generated value says).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from mapt.service import create_token, open_database
from mapt.service._app import Service, create_app
from mapt.service._errors import HTTP_STATUS

# Few requests per operation (each mode): the suite runs in CI on two cores. Five catch
# a route broken for a combination of two optional query parameters, and one broken
# for path names longer than 8 characters, at every seed tried (architecture.md, "Suite
# speed", session 10).
EXAMPLES_PER_OPERATION = 5
_ERROR_KEYS = {"type", "message", "exit_code"}
# The statuses the errors table maps mapt's errors to, one way (500 is a bug).
_ERROR_STATUSES = {status for _, status in HTTP_STATUS} - {500}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("openapi")
    database = open_database(f"sqlite:///{folder / 'service.sqlite3'}")
    token = create_token(database, "fuzz")[1]
    app = create_app(Service(database=database))
    yield app, token
    database.dispose()


@pytest.fixture(autouse=True)
def _no_state_outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A host status read generated here reads this test's empty state, nobody's home."""
    monkeypatch.setenv("MAPT_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="module")
def openapi_schema(served: Any) -> Any:
    app, _ = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    @schema.hook
    def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
        if query and query.get("wait") in (True, "true", "True"):
            query["timeout"] = 0.2
        return query

    return schema


def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """An error answer is the service's JSON error, and nothing else."""
    if response.status_code < 400:
        return None
    assert response.status_code in _ERROR_STATUSES, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert _ERROR_KEYS <= set(error) <= _ERROR_KEYS | {"field"}, error
    assert isinstance(error["type"], str) and error["type"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["exit_code"], int), error
    return None


def test_no_operation_fails_and_every_error_is_the_services_json(
    openapi_schema: Any, served: Any
) -> None:
    _, token = served
    labels = []
    for found in openapi_schema.get_all_operations():
        operation = found.ok()
        labels.append(operation.label)

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def called(case: Any) -> None:
                response = case.call(headers={"Authorization": f"Token {token}"})
                case.validate_response(response, checks=(not_a_server_error, error_shape))

            try:
                called()
            except Unsatisfiable:
                # An operation whose every input is valid (no query, no body, a free
                # text path parameter) has no invalid request to generate.
                assert mode is GenerationMode.NEGATIVE, operation.label
    # Every route was fuzzed, the host verbs among them.
    assert "POST /v1/hosts/{name}/refresh-ip" in labels and len(labels) >= 14, labels
