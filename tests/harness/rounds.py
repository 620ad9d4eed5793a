"""How many sequential rounds of AWS calls an operation takes, and how many clients.

``CallTimeline`` records when each call starts and ends (botocore's ``before-call``
and ``after-call`` events) and can hold each call for a fixed latency, so calls
issued in parallel overlap as they would against a distant AWS: by default first
(``before-call``), or with ``hold="on the wire"`` where AWS's distance is, between
the request going out and its answer being read (``before-parse``: the request
already built, signed and sent, so its CPU is spent before the wait, as against
AWS, not after it). The round of
a call is one more than the highest round among the calls that had ended before it
started: a count of round trips on the critical path, not a timing. Shared by the
tests and ``benchmarks/host_list.py``.

That count is by wall-clock order, so a call that starts late because the process
was short of CPU (a loaded machine) counts a round later than its dependencies say.
``CallTimeline.following_dependencies`` counts by dependency instead (``depth``): a
call's depth is one more than the deepest answer its thread could have used when it
started, followed through thread pools: a task knows what its submitter knew, a
thread that takes a future's result learns what the task knew when it ended, and a
task that waited in the queue for a busy worker of a full pool inherits what that
worker's last task knew (a pool too small to run everything at once costs real
round trips).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
    depth: int = 0  # by dependency on its own service's calls (``following_dependencies``)
    chain: int = 0  # by dependency on any service's calls: an EC2 answer before Pricing


# The key of ``_Knowledge.depths`` for the deepest call of any service.
_ANY = "*"


class _Knowledge(threading.local):
    """Per thread: service (or ``_ANY``) -> the deepest call whose answer the thread
    could have used."""

    def __init__(self) -> None:
        self.depths: dict[str, int] = {}
        self.last_end = 0.0  # when this thread's last pool task ended

    def learn(self, depths: dict[str, int]) -> None:
        for service, depth in depths.items():
            self.depths[service] = max(depth, self.depths.get(service, 0))


@dataclass
class CallTimeline:
    """Every call of clients created while its handlers are installed, timed.

    With ``services``, the start is hooked per service and ahead of every other
    handler, so calls that another ``before-call`` handler answers in-process (the
    replayed spot market's) are held and timed too.
    """

    latency: float = 0.0
    services: tuple[str, ...] = ()
    hold: str = "first"  # or "on the wire" (needs ``services``): see the module
    calls: list[TimedCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _known: _Knowledge = field(default_factory=_Knowledge, repr=False)

    def __post_init__(self) -> None:
        if self.hold not in ("first", "on the wire"):
            raise ValueError(f"hold {self.hold!r} is neither 'first' nor 'on the wire'")
        if self.hold == "on the wire" and not self.services:
            raise ValueError("hold 'on the wire' needs the services whose answers to hold")

    def handlers(self) -> list[tuple[Any, ...]]:
        from botocore.handlers import REGISTER_FIRST

        starts: list[tuple[Any, ...]] = [
            (f"before-call.{service}", self._started, REGISTER_FIRST) for service in self.services
        ] or [("before-call", self._started)]
        held: list[tuple[Any, ...]] = (
            [(f"before-parse.{service}", self._held) for service in self.services]
            if self.hold == "on the wire"
            else []
        )
        return [
            *starts,
            *held,
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

    def dependency_rounds(self, service: str | None = None) -> int:
        """The deepest chain of calls that each needed the one before (see the module):
        of ``service``'s calls, or of any service's when None."""
        if service is None:
            return max((c.chain for c in self.calls), default=0)
        return max((c.depth for c in self.calls if c.service == service), default=0)

    @contextmanager
    def following_dependencies(self) -> Iterator[None]:
        """Follow, meanwhile, what each thread knows through ``ThreadPoolExecutor``s."""
        known = self._known
        submit, result = ThreadPoolExecutor.submit, Future.result

        def submitted(
            pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
        ) -> Future[Any]:
            given, queued_at = dict(known.depths), time.monotonic()
            # Taken before submitting: once submit has started the pool's last thread,
            # the pool looks full to the very task that thread was started for.
            bounded = len(pool._threads) >= pool._max_workers  # type: ignore[attr-defined]
            ended: dict[str, int] = {}

            def task() -> Any:
                # Below its size the pool has a thread for every task, so a task can
                # wait for CPU but not for a busy worker's call to end.
                busy = bounded and known.last_end > queued_at
                waited = dict(known.depths) if busy else {}
                known.depths = given
                known.learn(waited)
                try:
                    return fn(*args, **kwargs)
                finally:
                    ended.update(known.depths)
                    known.last_end = time.monotonic()

            future = submit(pool, task)
            future.timeline_depths = ended  # type: ignore[attr-defined]
            return future

        def awaited(future: Future[Any], timeout: float | None = None) -> Any:
            try:
                return result(future, timeout)
            finally:
                known.learn(getattr(future, "timeline_depths", {}))

        ThreadPoolExecutor.submit = submitted  # type: ignore[assignment,method-assign]
        Future.result = awaited  # type: ignore[method-assign]
        try:
            yield
        finally:
            ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
            Future.result = result  # type: ignore[method-assign]

    def count(self, service: str | None = None) -> int:
        return sum(1 for c in self.calls if service is None or c.service == service)

    def _started(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        context["timeline_start"] = time.monotonic()
        service = model.service_model.service_name
        context["timeline_depth"] = self._known.depths.get(service, 0) + 1
        context["timeline_chain"] = self._known.depths.get(_ANY, 0) + 1
        if self.latency and self.hold == "first":
            time.sleep(self.latency)

    def _held(self, **_: Any) -> None:
        """An answer (or error) has come back: hold it for the latency before it is read."""
        if self.latency:
            time.sleep(self.latency)

    def _ended(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_name
        depth, chain = context.get("timeline_depth", 1), context.get("timeline_chain", 1)
        start = context.get("timeline_start", time.monotonic())
        call = TimedCall(service, model.name, start, time.monotonic(), depth, chain)
        self._known.learn({service: depth, _ANY: chain})
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


@contextmanager
def recording_bundle_loads() -> Iterator[list[str]]:
    """The CA bundle files loaded into any SSL context meanwhile, in order (urllib3
    loads one per TLS connection unless mapt's sessions share a loaded context)."""
    import ssl

    loaded: list[str] = []
    load = ssl.SSLContext.load_verify_locations

    def recorded(context: ssl.SSLContext, cafile: Any = None, *args: Any, **kwargs: Any) -> None:
        loaded.append(str(cafile))
        load(context, cafile, *args, **kwargs)

    ssl.SSLContext.load_verify_locations = recorded  # type: ignore[method-assign,assignment]
    try:
        yield loaded
    finally:
        ssl.SSLContext.load_verify_locations = load  # type: ignore[method-assign]
