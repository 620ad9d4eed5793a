"""A fake GitHub REST API on 127.0.0.1: a real HTTP server the client talks to over TCP.

It implements the few endpoints mapt uses, the way GitHub answers them (status codes,
JSON bodies, ``Link`` pagination), records every request for assertions, verifies
GitHub App JWTs with the App's public key, and can be told to answer a path with a
canned error.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

REGISTRATION_TOKEN = "AREGISTRATIONTOKEN7QXJ2KBWZPM4"
# Where a runner stand-in registers with a registration token (``_register_runner``).
RUNNER_REGISTRATION_PATH = "/actions/runner-registration"


@dataclass
class Recorded:
    """One request as the server saw it (header names lower-case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeApp:
    """A GitHub App the server knows: id, installation and the public half of its key."""

    app_id: int
    installation_id: int
    public_key_pem: bytes
    issued_tokens: list[str] = field(default_factory=list)
    jwt_claims: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Canned:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeGitHub:
    """The state behind the server: accepted tokens, runners per scope, canned answers."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix  # "/api/v3" plays a GitHub Enterprise Server
        self.requests: list[Recorded] = []
        self.tokens: set[str] = set()
        self.runners: dict[str, list[dict[str, Any]]] = {}
        self.canned: dict[tuple[str, str], Canned] = {}
        self.apps: dict[int, FakeApp] = {}
        self.page_size = 100
        self.registration_tokens_issued = 0
        # True: each registration token is new (as GitHub's are) and registers one runner
        # once; False: every one is REGISTRATION_TOKEN.
        self.fresh_registration_tokens = False
        # Issued token -> the scope it registers in; removed when a runner used it.
        self.unused_registration_tokens: dict[str, str] = {}
        self._ids = iter(range(1000, 100000))
        self.base_url = ""

    def add_scope(self, scope_path: str, runner_names: list[str] = ()) -> None:  # type: ignore[assignment]
        """Make ``/repos/o/r`` or ``/orgs/o`` exist, with runners of these names."""
        self.runners[scope_path] = [
            {"id": next(self._ids), "name": name, "os": "linux", "status": "online", "busy": False}
            for name in runner_names
        ]

    def runner_id(self, scope_path: str, name: str) -> int:
        return next(r["id"] for r in self.runners[scope_path] if r["name"] == name)

    def add_app(self, app_id: int, installation_id: int, public_key_pem: bytes) -> FakeApp:
        app = FakeApp(app_id, installation_id, public_key_pem)
        self.apps[installation_id] = app
        return app

    def answer(self, method: str, path: str, status: int, body: Any, **headers: str) -> None:
        """Answer ``method path`` (without prefix or query) with a canned response."""
        self.canned[(method, path)] = Canned(status, body, headers)

    # -- request handling ------------------------------------------------------------

    def handle(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        self.requests.append(request)
        if not request.path.startswith(self.prefix + "/"):
            return 404, {"message": "Not Found"}, {}
        path = request.path[len(self.prefix) :]
        canned = self.canned.get((request.method, path))
        if canned is not None:
            return canned.status, canned.body, canned.headers
        bearer = request.headers.get("authorization", "")
        if request.method == "POST" and path.startswith("/app/installations/"):
            return self._installation_token(path, bearer)
        if request.method == "POST" and path == RUNNER_REGISTRATION_PATH:
            return self._register_runner(bearer, request.body)
        if not bearer.startswith("Bearer ") or bearer[len("Bearer ") :] not in self.tokens:
            return 401, {"message": "Bad credentials"}, {}
        parts = path.split("/actions/runners", 1)
        scope_path = parts[0]
        if len(parts) != 2 or scope_path not in self.runners:
            return 404, {"message": "Not Found"}, {}
        rest = parts[1]
        if request.method == "POST" and rest == "/registration-token":
            self.registration_tokens_issued += 1
            token = REGISTRATION_TOKEN
            if self.fresh_registration_tokens:
                token = f"AREG{self.registration_tokens_issued:04d}FRESH7QXJ2KBWZPM4"
            self.unused_registration_tokens[token] = scope_path
            return 201, {"token": token, "expires_at": "2026-11-20T12:00:00Z"}, {}
        if request.method == "GET" and rest == "":
            return self._list(scope_path, request.query)
        if request.method == "DELETE" and rest.lstrip("/").isdigit():
            runner_id = int(rest.lstrip("/"))
            runners = self.runners[scope_path]
            if not any(r["id"] == runner_id for r in runners):
                return 404, {"message": "Not Found"}, {}
            self.runners[scope_path] = [r for r in runners if r["id"] != runner_id]
            return 204, None, {}
        return 404, {"message": "Not Found"}, {}

    def _register_runner(self, authorization: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        """What ``config.sh`` does with a registration token, in one request.

        The real runner sends ``RemoteAuth <token>`` to ``/actions/runner-registration``
        and then adds itself to the Actions service's pool; here the one request adds
        the runner to the token's scope and answers its id (``.runner``'s agentId).
        """
        token = authorization.removeprefix("RemoteAuth ")
        scope_path = self.unused_registration_tokens.pop(token, None)
        if not authorization.startswith("RemoteAuth ") or scope_path is None:
            return 401, {"message": "Bad registration token"}, {}
        # GitHub's --replace would drop a runner of the same name here; the fake keeps
        # it, so a test sees which runner mapt itself removes.
        runner = {"id": next(self._ids), "name": json.loads(body)["name"], "os": "linux",
                  "status": "online", "busy": False, "token": token}  # fmt: skip
        self.runners[scope_path].append(runner)
        return 201, {"id": runner["id"]}, {}

    def _list(
        self, scope_path: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = min(int(query.get("per_page", ["30"])[0]), self.page_size)
        page = int(query.get("page", ["1"])[0])
        runners = self.runners[scope_path]
        chunk = runners[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(runners):
            url = (
                f"{self.base_url}{self.prefix}{scope_path}/actions/runners"
                f"?per_page={per_page}&page={page + 1}"
            )
            headers["Link"] = f'<{url}>; rel="next"'
        return 200, {"total_count": len(runners), "runners": chunk}, headers

    def _installation_token(self, path: str, bearer: str) -> tuple[int, Any, dict[str, str]]:
        try:
            installation_id = int(path.split("/")[3])
        except (IndexError, ValueError):
            return 404, {"message": "Not Found"}, {}
        app = self.apps.get(installation_id)
        if app is None or path != f"/app/installations/{installation_id}/access_tokens":
            return 404, {"message": "Not Found"}, {}
        try:
            claims = jwt.decode(
                bearer.removeprefix("Bearer "),
                app.public_key_pem,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
            )
        except jwt.PyJWTError:
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        if claims["iss"] != str(app.app_id) or claims["exp"] - claims["iat"] > 600:
            return 401, {"message": "'Issuer' claim ('iss') must be an Integer"}, {}
        app.jwt_claims.append(claims)
        token = f"ghs_installation{len(app.issued_tokens)}x{installation_id}"
        app.issued_tokens.append(token)
        self.tokens.add(token)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return 201, {"token": token, "expires_at": expires}, {}


class FakeGitHubServer:
    """Serves a ``FakeGitHub`` on 127.0.0.1 at a random port, in a thread."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        handler = _handler_for(fake)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        host, port = self.httpd.server_address[:2]
        fake.base_url = f"http://{host}:{port}"
        # A short poll interval keeps shutdown() (once per test) from costing 0.5 s.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def api_url(self) -> str:
        return self.fake.base_url + self.fake.prefix

    def __enter__(self) -> FakeGitHubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _handler_for(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            recorded = Recorded(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            status, payload, headers = fake.handle(recorded)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
