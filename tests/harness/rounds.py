"""How many sequential rounds of AWS calls an operation takes, and how many clients.

``CallTimeline`` records when each call starts and ends (botocore's ``before-call``
and ``after-call`` events) and can hold each call for a fixed latency first, so
calls issued in parallel overlap as they would against a distant AWS. The round of
a call is one more than the highest round among the calls that had ended before it
started: a count of round trips on the critical path, not a timing. Shared by the
tests and ``benchmarks/host_list.py``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# The latency tests hold each call for: long enough that CPU delays on a loaded machine
# (two xdist workers on two cores, botocore parsing answers) cannot push a call's start
# past the end of another call of its own round, which would count it a round later.
ROUND_LATENCY = 0.5


@dataclass(frozen=True)
class TimedCall:
    service: str
    operation: str
    start: float
    end: float


@dataclass
class CallTimeline:
    """Every call of clients created while its handlers are installed, timed.

    With ``services``, the start is hooked per service and ahead of every other
    handler, so calls that another ``before-call`` handler answers in-process (the
    replayed spot market's) are held and timed too.
    """

    latency: float = 0.0
    services: tuple[str, ...] = ()
    calls: list[TimedCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def handlers(self) -> list[tuple[Any, ...]]:
        from botocore.handlers import REGISTER_FIRST

        starts: list[tuple[Any, ...]] = [
            (f"before-call.{service}", self._started, REGISTER_FIRST) for service in self.services
        ] or [("before-call", self._started)]
        return [
            *starts,
            ("after-call", self._ended),
            ("after-call-error", self._ended),
        ]

    def rounds(self, service: str | None = None) -> int:
        chosen = sorted(
            (c for c in self.calls if service is None or c.service == service),
            key=lambda c: c.start,
        )
        depth: list[int] = []
        for index, call in enumerate(chosen):
            before = [depth[i] for i, d in enumerate(chosen[:index]) if d.end <= call.start]
            depth.append(1 + max(before, default=0))
        return max(depth, default=0)

    def count(self, service: str | None = None) -> int:
        return sum(1 for c in self.calls if service is None or c.service == service)

    def _started(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        context["timeline_start"] = time.monotonic()
        if self.latency:
            time.sleep(self.latency)

    def _ended(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        call = TimedCall(
            model.service_model.service_name,
            model.name,
            context.get("timeline_start", time.monotonic()),
            time.monotonic(),
        )
        with self._lock:
            self.calls.append(call)


@contextmanager
def counting_clients() -> Iterator[Counter[str]]:
    """Counts the botocore clients created meanwhile, by service name."""
    import botocore.session

    created: Counter[str] = Counter()
    original = botocore.session.Session.create_client

    def counted(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        created[service_name] += 1
        return original(self, service_name, *args, **kwargs)

    botocore.session.Session.create_client = counted  # type: ignore[method-assign]
    try:
        yield created
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
