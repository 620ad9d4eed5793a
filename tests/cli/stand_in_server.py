"""A stand-in for ``mapt serve`` on 127.0.0.1: canned JSON answers, every request kept.

For CLI tests that check what a ``--server`` command sends (or that it sends nothing)
without starting a real server (``tests/harness/service.py``), whose start costs
seconds, or how a command takes a server that is not mapt's. ``answer(method, path)``
gives the status and the document (JSON), or a page's text (HTML, as a proxy's error
page); each request is recorded as ``(method, path, body)``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, str], tuple[int, dict[str, Any] | str]]


@dataclass
class StandIn:
    url: str
    requests: list[tuple[str, str, Any]] = field(default_factory=list)


@contextmanager
def stand_in_server(answer: Answer) -> Iterator[StandIn]:
    state = StandIn("")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((self.command, self.path, body))
            status, document = answer(self.command, self.path)
            page = isinstance(document, str)
            data = (document if page else json.dumps(document)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if page else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
