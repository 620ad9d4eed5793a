"""Ordinary AWS failures through the real ``mapt`` entry point: one ``Error:`` line each.

Every case runs ``python -m mapt`` in a subprocess, against moto's server, a tiny
HTTP server on 127.0.0.1 that answers what AWS (or a proxy) might, or a loopback
port nothing listens on. Home, state folder and AWS config are empty temporary
folders, so the machine's own AWS setup is never read and anything written shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.harness import sandbox_moto
from tests.harness.moto_server import free_port, moto_server
from tests.harness.sandbox_moto import ENABLED_REGIONS_VARIABLE

REPO = Path(__file__).resolve().parents[2]
README_COMMAND = ["aws", "spot-price", "--cpus", "4", "--memory", "16", "--arch", "x86_64"]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``moto_server`` on a free loopback port, as a separate process.

    Two regions opted in (``tests/harness/sandbox_moto.py``), not moto's 24: what is
    checked is how a ranking without scores is reported, and each region scanned costs
    moto a backend to build (most of this module's CPU).
    """
    env = {
        **os.environ,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        "PYTHONPATH": str(REPO),
        ENABLED_REGIONS_VARIABLE: "eu-west-1,us-east-1",
    }
    program = [sys.executable, str(Path(sandbox_moto.__file__))]
    with (tmp_path_factory.mktemp("moto") / "server.log").open("w") as log:
        with moto_server(env, log=log, program=program) as url:
            yield url
        log.close()


@dataclass
class Reply:
    status: int
    content_type: str
    body: str


class FakeAws:
    """An HTTP server on 127.0.0.1 that answers every request with ``reply``."""

    def __init__(self) -> None:
        self.reply = Reply(200, "text/html", "<!doctype html><title>Sign in</title>")
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests += 1
                body = fake.reply.body.encode()
                self.send_response(fake.reply.status)
                self.send_header("Content-Type", fake.reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_aws() -> Iterator[FakeAws]:
    server = FakeAws()
    yield server
    server.close()


def ec2_error(code: str, message: str) -> str:
    """An EC2 (query protocol) error document, as AWS sends it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>5c6c5d6e-0000-4000-8000-000000000000</RequestID></Response>"
    )


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]
    home: Path

    def written(self) -> list[str]:
        return sorted(str(p.relative_to(self.home)) for p in self.home.rglob("*") if p.is_file())

    def assert_one_error_line(self, exit_code: int, *fragments: str) -> str:
        out = self.result
        assert out.returncode == exit_code, out.stderr
        assert "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), out.stderr
        for fragment in fragments:
            assert fragment in lines[0]
        assert out.stdout == ""
        assert self.written() == []
        return lines[0]


def run_mapt(
    tmp_path: Path, args: list[str], *, endpoint: str | None, credentials: bool = True
) -> Run:
    """``python -m mapt ARGS`` with nothing of this machine's AWS or mapt setup."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAPT_"))}
    env.update(
        HOME=str(home),
        MAPT_STATE_DIR=str(home / "state"),
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",  # never ask 169.254.169.254 for credentials
        AWS_DEFAULT_REGION="us-east-1",
    )
    if credentials:
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    result = subprocess.run(
        [sys.executable, "-m", "mapt", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=120,
    )
    return Run(result, home)


def test_readme_job_command_against_moto_server_ranks_without_scores(
    tmp_path: Path, moto_endpoint: str
) -> None:
    """moto's server answers GetSpotPlacementScores with an HTML 500 page."""
    run = run_mapt(tmp_path, README_COMMAND, endpoint=moto_endpoint)
    assert run.result.returncode == 0, run.result.stderr
    assert "Traceback" not in run.result.stderr
    assert "spot placement scores are unavailable" in run.result.stderr
    assert "GetSpotPlacementScores" in run.result.stderr
    assert "Spot offers, best first" in run.result.stdout
    assert run.written() == []


def test_no_credentials_is_exit_5_with_how_to_provide_them(tmp_path: Path) -> None:
    run = run_mapt(tmp_path, README_COMMAND, endpoint=f"http://127.0.0.1:{free_port()}",
                   credentials=False)  # fmt: skip
    # Found before any AWS call is made: the line says what is missing, not a call.
    line = run.assert_one_error_line(5, "no AWS credentials")
    assert "AWS_ACCESS_KEY_ID" in line


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("AuthFailure", "AWS was not able to validate the provided access credentials"),
        ("ExpiredToken", "The security token included in the request is expired"),
    ],
)
def test_invalid_or_expired_credentials_are_exit_5(
    tmp_path: Path, fake_aws: FakeAws, code: str, message: str
) -> None:
    fake_aws.reply = Reply(400, "text/xml", ec2_error(code, message))
    run = run_mapt(tmp_path, README_COMMAND, endpoint=fake_aws.url)
    line = run.assert_one_error_line(5, "DescribeRegions", "us-east-1", code, message)
    assert "AWS_PROFILE" in line


def test_missing_permission_is_exit_1_naming_the_call(tmp_path: Path, fake_aws: FakeAws) -> None:
    fake_aws.reply = Reply(
        403,
        "text/xml",
        ec2_error("UnauthorizedOperation", "You are not authorized to perform this operation."),
    )
    run = run_mapt(tmp_path, README_COMMAND, endpoint=fake_aws.url)
    run.assert_one_error_line(1, "DescribeRegions", "UnauthorizedOperation", "permissions")


def test_unreachable_endpoint_is_exit_1_naming_it(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    run = run_mapt(tmp_path, README_COMMAND, endpoint=endpoint)
    run.assert_one_error_line(1, "DescribeRegions", "could not be reached", endpoint)


def test_an_html_page_instead_of_an_answer_is_exit_1(tmp_path: Path, fake_aws: FakeAws) -> None:
    run = run_mapt(tmp_path, README_COMMAND, endpoint=fake_aws.url)
    run.assert_one_error_line(1, "DescribeRegions", "could not be parsed")


def test_a_malformed_region_is_exit_2_naming_it(tmp_path: Path, fake_aws: FakeAws) -> None:
    run = run_mapt(tmp_path, [*README_COMMAND, "--region", "../../etc"], endpoint=fake_aws.url)
    run.assert_one_error_line(2, "'../../etc'")
    assert fake_aws.requests == 0
