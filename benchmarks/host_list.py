"""How long does ``mapt aws host list`` take for 0, 200 and 800 stacks, and how many S3 calls?

Each backend holds N projects with one host stack each (plus one lock), written the
way Pulumi's DIY backend writes them: a local folder (``file://``) and an S3 bucket
served by moto, both in this process (``mock_aws``) and by a ``moto_server`` process
on 127.0.0.1. ``host list --output json`` runs through the real CLI, in this process.
For S3, every call is also held for a latency L, so calls issued together overlap as
against a distant S3; the rounds are counted from the calls' start and end times (a
call's round is one more than the highest round among the calls that ended before it
started). ``cpu`` is this process's CPU time for the listing.

Targets (issue #15): one S3 client per process; 200 stacks on S3 in <= 3 sequential
rounds (listing stacks and locks, then every checkpoint read at once); no Pulumi
import. Before: a client per stack and 3 sequential calls per stack (601 calls,
601 rounds for 200 stacks). In-process, the simulator's CPU (about 8 ms per read,
most of it moto's) shares mapt's interpreter lock, so when L is small next to the
CPU all reads take together, reads that could overlap queue behind it and show as
more rounds. The ``moto_server`` rows leave only mapt's own CPU (botocore's work per
call) in this process: the rounds a real S3 would show. The ``moto_server TLS`` rows
serve S3 over TLS, as AWS does (a trustme certificate; clients verify with certifi's
bundle plus the test CA): ``CA loads`` counts the bundle's loads into an SSL context,
each about 40 ms of CPU (urllib3 loads it per connection unless mapt's session shares
one loaded context: ``mapt.core.process_wide_sharing``).

Run: ``python benchmarks/host_list.py [--latency 0.2] [--sizes 0,200,800]``.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds held per S3 call")
    parser.add_argument("--sizes", default="0,200,800", help="stack counts, comma-separated")
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    import boto3
    from moto import mock_aws
    from typer.testing import CliRunner

    from mapt.cli import app
    from tests.harness.rounds import CallTimeline, counting_clients, recording_bundle_loads
    from tests.harness.spot_market import installed
    from tests.stacks.test_inventory import checkpoint

    runner = CliRunner()

    def files(count: int) -> dict[str, bytes]:
        state = {}
        for index in range(count):
            project = f"p{index:04d}"
            outputs = {"region": "eu-west-1", "host": "198.51.100.7"}
            key = f".pulumi/stacks/{project}/host-{project}.json"
            state[key] = checkpoint(project, f"host-{project}", outputs, 12)
        if count:
            state[".pulumi/locks/organization/p0000/host-p0000/1.json"] = b"{}"
        return state

    def listed(url: str, count: int) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        result = runner.invoke(
            app, ["aws", "host", "list", "--backed-url", url, "--output", "json"]
        )
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert result.exit_code == 0, result.stderr
        assert len(json.loads(result.stdout)["hosts"]) == count
        return elapsed, cpu

    def on_s3(url: str, make_client: Callable[[], Any], count: int) -> str:
        import mapt.core._aws_sessions as sessions

        state = files(count)
        s3 = make_client()
        s3.create_bucket(Bucket="bench-state")
        for key, data in state.items():
            s3.put_object(Bucket="bench-state", Key=f"ci/{key}", Body=data)
        timeline = CallTimeline(latency=options.latency)
        boto3.DEFAULT_SESSION = None  # the run starts with no client, as a fresh process
        getattr(sessions, "_trusted", {}).clear()  # and no CA bundle loaded
        loading = recording_bundle_loads()
        with counting_clients() as created, installed(timeline.handlers()), loading as loads:
            wall, cpu = listed(url, count)
        calls = timeline.count("s3")
        return (
            f"{wall:>7.2f} {cpu:>6.2f} {wall / options.latency:>6.1f} {calls:>6} "
            f"{timeline.rounds('s3'):>6} {created['s3']:>7} {len(loads):>8}"
        )

    with tempfile.TemporaryDirectory() as empty:  # load every module before timing
        listed(f"file://{empty}", 0)
    print(f"host list, S3 calls held for L = {options.latency:.3f} s")
    print(f"{'stacks':>6} {'backend':<18} {'wall s':>7} {'cpu s':>6} {'wall/L':>6} "
          f"{'calls':>6} {'rounds':>6} {'clients':>7} {'CA loads':>8}")  # fmt: skip
    from tests.harness.moto_server import certifi_and_loopback, moto_server

    certificates = tempfile.TemporaryDirectory()
    served, bundle = certifi_and_loopback(Path(certificates.name))
    trusted = ssl.create_default_context(cafile=str(bundle))
    with certificates, moto_server() as url, moto_server(tls=served) as secure:
        endpoint = url.removeprefix("http://")  # host:port, as the backend URL names it
        for count in sizes:
            with tempfile.TemporaryDirectory() as root:
                for key, data in files(count).items():
                    path = Path(root) / key
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                wall, cpu = listed(f"file://{root}", count)
            print(f"{count:>6} {'file':<18} {wall:>7.2f} {cpu:>6.2f}")
            with mock_aws():
                url = "s3://bench-state/ci?region=us-east-1"
                row = on_s3(url, lambda: boto3.client("s3"), count)
            print(f"{count:>6} {'s3 moto in-process':<18} {row}")
            reset = f"http://{endpoint}/moto-api/reset"  # an empty server for each size
            urllib.request.urlopen(urllib.request.Request(reset, method="POST")).close()
            url = (
                f"s3://bench-state/ci?region=us-east-1&endpoint={endpoint}"
                "&disableSSL=true&s3ForcePathStyle=true"
            )
            row = on_s3(url, lambda: boto3.client("s3", endpoint_url=f"http://{endpoint}"), count)
            print(f"{count:>6} {'s3 moto_server':<18} {row}")
            reset = urllib.request.Request(f"{secure}/moto-api/reset", method="POST")
            urllib.request.urlopen(reset, context=trusted).close()
            tls_url = (
                f"s3://bench-state/ci?region=us-east-1&endpoint={secure.removeprefix('https://')}"
                "&s3ForcePathStyle=true"
            )
            os.environ["AWS_CA_BUNDLE"] = str(bundle)
            row = on_s3(tls_url, lambda: boto3.client("s3", endpoint_url=secure), count)
            del os.environ["AWS_CA_BUNDLE"]
            print(f"{count:>6} {'s3 moto_server TLS':<18} {row}")
    print(
        "targets: clients 1; rounds <= 3 at 200 stacks; calls = stacks + 2 (+1 per 1000 keys); "
        "CA loads <= 1"
    )


if __name__ == "__main__":
    main()
