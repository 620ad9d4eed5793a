"""How many rounds, calls and latencies L does a fresh spot ranking take?

Simulated AWS: a moto server on 127.0.0.1, in its own process so that its CPU is not
counted as mapt's, for regions, zones and instance types (every region of the aws
partition enabled; its never-changing answers kept and replayed, ``StaticAnswers``,
so that moto's own rendering time is not on the critical path); the replayed spot
market (tests/data/spot-market.csv.gz) for spot prices, placement scores and on-demand
prices, its answers handed to botocore as the bytes AWS sends (EC2's XML, Pricing's
JSON: ``SpotMarket(on_the_wire=True)``), so that mapt's process serializes, signs and
parses them as it would AWS's, each request sent over HTTP(S) to the moto server's
process, where ``market_echo`` answers with as many bytes as the market's answer has
(``over_http=True``), so that each connection, its TLS handshake and the transfer are
the client's too, as against AWS (``--market-before-send`` hands botocore the bytes
without a request, as sessions 14 to 16 measured: no connection for the market's
calls; ``--market-in-process`` hands botocore the parsed answers instead, as sessions
before the 14th measured); and a latency L held on every EC2 and
Pricing call (``tests.harness.rounds.CallTimeline``) where AWS's distance is: after the
request is built, signed and sent, before its answer is read (``hold="on the wire"``),
so that a request's own CPU is spent before its wait, as against AWS;
``--hold-first`` holds it before the request is built instead, as sessions before
the 17th measured (a round's requests were then all built after their wait, which
put their CPU after it too), and ``--market-in-process`` implies it (its answers
come before anything is built). For each L in 0.05, 0.2 and
0.5 s and N = 4, 17 or every usable region, it prints for a fresh ``allocation()``
and for the ranking of ``mapt aws spot-price`` (with on-demand prices):

- rounds: the dependency depth counted from the calls' start and end times (a call's
  round is one more than the highest round of the calls that ended before it
  started), so a regression to more sequential rounds shows at any L and any CPU
  speed; target <= 2;
- calls: EC2 and Pricing calls made;
- wall / L: the wall time in units of L, CPU (boto3 clients, the simulator) included;
  target with every region: <= 4 L at L = 0.2 s and <= 3 L at L = 0.5 s;
- cpu s: the CPU time mapt's process spent (every thread; the market's answers are
  in-process, moto's are not), which on a busy machine stretches the wall time;
- sim s: the CPU time the moto server's process spent meanwhile;
- CA loads: how many times a CA bundle was loaded into an SSL context (``--tls``:
  the simulator over TLS, as AWS's endpoints are; its clients verify with certifi's
  bundle plus the test CA, so each load costs what certifi's costs);

and the calls of a re-run with the ``spotOption`` stack present (target 0). Two
scenarios: placement scores answered, and refused (UnauthorizedOperation).

Each run builds its own boto3 session, as one CLI process does, so each parses the
service models again: the cold figure a library caller pays. The ``answered, warm``
rows measure ``allocation()`` the way ``mapt aws host create`` (and the service's
host operations) run it: the session's EC2 model loaded before the ranking, while
the Pulumi CLI's version is checked (``mapt.allocation.models_loading``): that
wait is off the wall time, but the load's CPU is in cpu s (printed too: moved off
the critical path, not removed); ``mapt aws spot-price`` waits on nothing first,
so it has the cold figure only.
``--no-gc-tuning`` builds clients with the collector running
(the GC pause of ``mapt.allocation._ec2.collection_paused`` off), to measure it.

Run: ``python benchmarks/allocation_speed.py [--no-gc-tuning] [--latency L]...
[--all-regions-only] [--named] [--tls] [--hold-first]
[--market-before-send | --market-in-process]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LATENCIES = (0.05, 0.2, 0.5)
SCORES = {
    "use1-az4": 9,
    "use1-az6": 8,
    "eun1-az1": 9,
    "euw1-az1": 7,
    "apne1-az4": 8,
    "aps1-az1": 10,
    "usw2-az1": 7,
    "euc1-az2": 8,
    "cac1-az1": 7,
    "apse2-az1": 9,
}
# 35 types match --cpus 96 --memory 768 (more than the old cap of 20).
CPUS, MEMORY_GIB = 96, 768
# ``--named``: types named instead, one round where every region is always enabled.
NAMED = ("m5.large", "m6i.large", "t3.large")


@contextlib.contextmanager
def every_region_enabled() -> Iterator[None]:
    """moto's regions of the aws partition, all enabled for the account."""
    from moto.ec2.models.availability_zones_and_regions import Region, RegionsAndZonesBackend

    original = RegionsAndZonesBackend.regions
    RegionsAndZonesBackend.regions = [
        Region(r.name, r.endpoint, "opted-in")
        for r in original
        if not r.name.startswith(("cn-", "us-gov-", "us-iso"))
    ]
    try:
        yield
    finally:
        RegionsAndZonesBackend.regions = original


@dataclass(frozen=True)
class Simulator:
    """The moto server's URL, its process (whose CPU time is the simulator's) and, over
    TLS, the CA bundle that verifies its certificate."""

    url: str
    pid: int
    bundle: str | None = None

    def cpu(self) -> float:
        """CPU seconds the server's process has used (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def moto_server(tls: bool = False) -> Iterator[Simulator]:
    """A moto server with every region enabled, in a child process; ``tls``: over TLS.

    Over TLS its certificate is a test CA's (trustme), and the bundle clients verify
    with is certifi's (what botocore verifies AWS with) and that CA, so that each load
    of it costs what loading certifi's costs.
    """
    import ssl
    import tempfile

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks.allocation_speed import serve; serve(int(sys.argv[2]), *sys.argv[3:])"
    )
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as folder:
        certificate: list[str] = []
        bundle = trusted = None
        if tls:
            from tests.harness.moto_server import certifi_and_loopback

            served, bundle = certifi_and_loopback(Path(folder))
            certificate = [str(path) for path in served]
            trusted = ssl.create_default_context(cafile=str(bundle))
        child = subprocess.Popen(
            [sys.executable, "-c", code, root, str(port), *certificate],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"{url}/moto-api/", timeout=1, context=trusted).close()
                    break
                except OSError:
                    time.sleep(0.1)
            yield Simulator(url, child.pid, str(bundle) if bundle else None)
        finally:
            child.terminate()
            child.wait()


def serve(port: int, chain: str | None = None, key: str | None = None) -> None:
    """The child process of ``moto_server``: moto, its static answers kept, and the
    market's requests echoed (``market_echo``); over TLS with a certificate ``chain``
    and its ``key``.

    Each connection's TLS handshake is made in the thread that serves it, as AWS's
    endpoints make theirs side by side (werkzeug's own TLS makes it while accepting,
    one connection after another), and answers are sent without waiting to fill a
    packet (``TCP_NODELAY``: over TLS, Nagle's algorithm held each answer about 15 ms).
    """
    import ssl

    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    from tests.harness.spot_market import market_echo

    class PromptHandler(MotoRequestHandler):
        disable_nagle_algorithm = True

    with every_region_enabled():
        app = market_echo(StaticAnswers(DomainDispatcherApplication(create_backend_app)))
        server = make_server("127.0.0.1", port, app, True, request_handler=PromptHandler)
        if chain and key:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(chain, key)
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
            server.ssl_context = context  # werkzeug's mark of an https server
        server.serve_forever()


class StaticAnswers:
    """moto's answers to the read-only calls whose answer never changes, kept by request.

    moto takes about 0.2 s of CPU to filter and render DescribeInstanceTypes (39 types,
    160 kB) and 20 ms for each DescribeAvailabilityZones: server time that real AWS
    spends within L, but that here would add to the critical path (round 2 waits on
    the types) and take a core from mapt's process. The answer to the same body in the
    same region (the signature's credential scope) is moto's first one, replayed; mapt
    still builds, signs, sends and parses every request in its own process.
    """

    OPERATIONS = (b"DescribeInstanceTypes", b"DescribeAvailabilityZones", b"DescribeRegions")

    def __init__(self, app: Any) -> None:
        self._app = app
        self._kept: dict[tuple[str, bytes], tuple[str, list[tuple[str, str]], bytes]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        import io
        from urllib.parse import parse_qs

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        scope = environ.get("HTTP_AUTHORIZATION", "").split("/")
        key = (scope[2] if len(scope) > 2 else "", body)
        if key not in self._kept:
            answered: list[Any] = []
            chunks = b"".join(self._app(environ, lambda *a: answered.append(a) or (lambda _: None)))
            status, headers = answered[0][:2]
            action = parse_qs(body).get(b"Action", [b""])[0]
            if not status.startswith("200") or action not in self.OPERATIONS:
                start_response(status, headers)
                return [chunks]
            self._kept[key] = (status, headers, chunks)
        status, headers, chunks = self._kept[key]
        start_response(status, headers)
        return [chunks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-gc-tuning", action="store_true", help="collect while building")
    parser.add_argument("--latency", type=float, action="append", help="only this L (repeatable)")
    parser.add_argument("--all-regions-only", action="store_true", help="only N = every region")
    parser.add_argument("--named", action="store_true", help=f"name the types {', '.join(NAMED)}")
    parser.add_argument("--tls", action="store_true", help="the simulator over TLS, as AWS is")
    parser.add_argument(
        "--hold-first",
        action="store_true",
        help="hold each call's latency before its request is built (as before session 17)",
    )
    market = parser.add_mutually_exclusive_group()
    market.add_argument(
        "--market-before-send",
        action="store_true",
        help="hand botocore the market's answers as bytes without sending the requests",
    )
    market.add_argument(
        "--market-in-process",
        action="store_true",
        help="hand botocore the market's answers parsed (no serializing, signing, parsing)",
    )
    options = parser.parse_args()
    latencies = tuple(options.latency or LATENCIES)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        # The simulator's own start-up (bundled AMIs per region) is not AWS latency.
        MOTO_EC2_LOAD_DEFAULT_AMIS="false",
    )
    import boto3

    from mapt.allocation import (
        AllocationArgs,
        ComputeRequest,
        SpotArgs,
        _allocation,
        _ec2,
        allocation,
        spot_offer_rows,
        spot_offers,
    )
    from mapt.core import RunContext
    from mapt.stacks import InMemoryEngine
    from tests.harness.spot_market import SpotMarket, installed, load_rows

    logging.getLogger("mapt").setLevel(logging.ERROR)  # the refused scores' warning
    if options.no_gc_tuning:
        _ec2.collection_paused = contextlib.nullcontext  # type: ignore[assignment]
        _allocation.collection_paused = contextlib.nullcontext  # type: ignore[assignment]
        _ec2._freeze_models_once = lambda: None
    rows = load_rows()
    request = (
        ComputeRequest(compute_sizes=NAMED)
        if options.named
        else ComputeRequest(cpus=CPUS, memory_gib=MEMORY_GIB)
    )
    asked = (
        f"--compute-sizes {','.join(NAMED)}"
        if options.named
        else f"--cpus {CPUS} --memory {MEMORY_GIB}"
    )
    wire = not options.market_in_process
    over_http = wire and not options.market_before_send
    hold = "first" if options.hold_first or not wire else "on the wire"
    print(
        f"fresh spot ranking of {asked}; "
        f"GC paused while building clients: {not options.no_gc_tuning}; "
        f"simulator over {'TLS' if options.tls else 'HTTP'}; "
        f"market answers {'parsed by botocore' if wire else 'handed over parsed'}"
        f"{', sent over HTTP' if over_http else ''}; "
        f"latency held {'before the request is built' if hold == 'first' else 'on the wire'}"
    )
    header = (
        f"{'scenario':<16}{'N':>3}{'L s':>5} | {'allocation: rounds':>18}{'calls':>6}"
        f"{'wall/L':>7}{'cpu s':>6}{'sim s':>6}{'CA loads':>9}{'re-run calls':>13} | "
        f"{'spot-price: rounds':>18}{'calls':>6}{'wall/L':>7}{'cpu s':>6}{'sim s':>6}"
        f"{'CA loads':>9}"
    )
    print(header)
    print("-" * len(header))
    with moto_server(tls=options.tls) as simulator:
        os.environ["AWS_ENDPOINT_URL"] = simulator.url  # botocore sends every client there
        if simulator.bundle:
            os.environ["AWS_CA_BUNDLE"] = simulator.bundle
        home = boto3.client("ec2", region_name="us-east-1")
        home.describe_instance_types(InstanceTypes=["m5.large"])  # load moto's data
        usable = sorted(
            r["RegionName"]
            for r in home.describe_regions()["Regions"]
            if r.get("OptInStatus") in ("opt-in-not-required", "opted-in")
        )
        for region in usable:  # build moto's per-region backends before timing
            boto3.client("ec2", region_name=region).describe_availability_zones()
        kept_by_count = {
            4: ["us-east-1", "eu-north-1", "ap-south-1", "us-west-2"],
            17: ["us-east-1", *[r for r in usable if r != "us-east-1"][:16]],
            len(usable): usable,
        }
        # A ranking of each scenario before timing, so that moto's static answers to the
        # requests mapt sends are kept (StaticAnswers): the scores refused, the AZ names
        # of every usable region, which an answered ranking does not ask.
        for refused in ({}, {"*": "UnauthorizedOperation"}):
            market = SpotMarket(
                rows=list(rows),
                scores=dict(SCORES),
                score_errors=refused,
                on_the_wire=wire,
                over_http=over_http,
            )
            with installed(market.handlers()):
                spot_offers(AllocationArgs(compute_request=request, spot=SpotArgs()))
        boto3.DEFAULT_SESSION = None
        for scenario, score_errors, warm in (
            ("scores answered", {}, False),
            ("answered, warm", {}, True),
            ("scores refused", {"*": "UnauthorizedOperation"}, False),
        ):
            for count, kept in kept_by_count.items():
                args = AllocationArgs(
                    compute_request=request,
                    spot=SpotArgs(
                        tolerance="low",
                        excluded_regions=tuple(r for r in usable if r not in kept),
                    ),
                )
                if options.all_regions_only and count != len(usable):
                    continue
                for latency in latencies:
                    market = SpotMarket(
                        rows=list(rows),
                        scores=dict(SCORES),
                        score_errors=dict(score_errors),
                        on_the_wire=wire,
                        over_http=over_http,
                    )
                    engine = InMemoryEngine()
                    context = RunContext(project_name="bench")

                    fresh = functools.partial(allocation, context, args, engine=engine)
                    prices = functools.partial(spot_offer_rows, args)
                    with installed(market.handlers()):
                        first = measure(fresh, latency, simulator, hold, warm=warm)
                        rerun = measure(fresh, latency, simulator, hold, warm=warm)
                        # `mapt aws spot-price` waits on nothing before its ranking.
                        table = None if warm else measure(prices, latency, simulator, hold)
                    print(
                        f"{scenario:<16}{count:>3}{latency:>5.2f} | {first[0]:>18}{first[1]:>6}"
                        f"{first[2]:>7.1f}{first[3]:>6.2f}{first[4]:>6.2f}{first[6]:>9}"
                        f"{rerun[1]:>13} | "
                        + (
                            f"{table[0]:>18}{table[1]:>6}{table[2]:>7.1f}{table[3]:>6.2f}"
                            f"{table[4]:>6.2f}{table[6]:>9}"
                            if table
                            else f"{'(cold only)':>18}  loading cpu {first[5]:.2f} s in cpu s"
                        ),
                        flush=True,
                    )


def measure(
    run: Callable[[], Any],
    latency: float,
    simulator: Simulator,
    hold: str = "on the wire",
    *,
    warm: bool = False,
) -> tuple[int, int, float, float, float, float, int]:
    """(rounds, calls, wall / L, CPU s, the simulator's CPU s, the loading's CPU s, CA
    bundle loads) of one run, as a fresh CLI process would make it, each call held
    for ``latency`` where ``hold`` says (``CallTimeline``); ``warm``: as ``mapt
    aws host create`` makes it, the EC2 model loaded into the session before the
    ranking (``models_loading``, while the Pulumi CLI's version is checked): its wall
    time is not the ranking's, its CPU is counted in CPU s (moved, not removed)."""
    import boto3

    import mapt.core._aws_sessions as sessions
    from mapt.allocation import _ec2, models_loading
    from tests.harness.rounds import CallTimeline, recording_bundle_loads
    from tests.harness.spot_market import installed

    _ec2._models_frozen = False  # a new process has frozen nothing yet
    getattr(sessions, "_trusted", {}).clear()  # nor loaded a CA bundle
    gc.unfreeze()
    gc.collect()
    timeline = CallTimeline(latency=latency, services=("ec2", "pricing"), hold=hold)
    # Also a new default session: models parsed again.
    with installed(timeline.handlers()), recording_bundle_loads() as loads:
        cpu = time.process_time()
        if warm:
            with models_loading(boto3._get_default_session) as made:
                pass
            made.result()
        loading = time.process_time() - cpu
        start, served = time.perf_counter(), simulator.cpu()
        run()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        served = simulator.cpu() - served
    boto3.DEFAULT_SESSION = None
    return timeline.rounds(), timeline.count(), wall / latency, cpu, served, loading, len(loads)


if __name__ == "__main__":
    main()
