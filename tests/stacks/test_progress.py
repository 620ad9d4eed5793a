from __future__ import annotations

import io

import pytest
from pulumi.automation import EngineEvent

from mapt.core import register_secret
from mapt.stacks import Progress
from tests.stacks.fake_pulumi import urn


def step(op: str, type_: str, name: str) -> dict[str, str]:
    return {"op": op, "urn": urn("h", "p", type_, name), "type": type_}


def events() -> list[EngineEvent]:
    vpc = step("create", "aws:ec2/vpc:Vpc", "net")
    host = step("create", "aws:ec2/instance:Instance", "host")
    same = step("same", "pulumi:pulumi:Stack", "p-h")
    raw = [
        {"resourcePreEvent": {"metadata": same}},
        {"resourcePreEvent": {"metadata": vpc}},
        {"resOutputsEvent": {"metadata": vpc}},
        {"resourcePreEvent": {"metadata": host}},
        {"diagnosticEvent": {"severity": "error", "message": "boom: token hunter2-token\n"}},
        {"resOpFailedEvent": {"metadata": host, "status": 1, "steps": 1}},
    ]
    return [EngineEvent.from_json(e) for e in raw]


@pytest.mark.parametrize("live", [False, True])
def test_progress_counts_resources_and_keeps_error_diagnostics(live: bool) -> None:
    register_secret("hunter2-token")
    stream = io.StringIO()
    with Progress("host-demo", "up", stream=stream, live=live) as progress:
        for event in events():
            progress(event)
    assert (progress.done, progress.total) == (1, 2)  # "same" steps are not work
    assert progress.diagnostics == ["boom: token ***"]
    text = stream.getvalue()
    assert "hunter2" not in text
    assert "create aws:ec2/instance:Instance host FAILED" in text
    assert "up finished: 1/2 resources" in text and "1 failed" in text
    if not live:
        assert all(line.startswith("mapt: host-demo: ") for line in text.splitlines())
