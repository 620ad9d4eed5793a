"""How long does ``mapt aws host list`` take for 0, 200 and 800 stacks, and how many S3 calls?

Each backend holds N projects with one host stack each (plus one lock), written the
way Pulumi's DIY backend writes them: a local folder (``file://``) and an S3 bucket
(moto, in-process). ``host list --output json`` runs through the real CLI, in this
process. For S3, every call is also held for a latency L, so calls issued together
overlap as against a distant S3; the rounds are counted from the calls' start and
end times (a call's round is one more than the highest round among the calls that
ended before it started).

Targets (issue #15): one S3 client per process; 200 stacks on S3 in <= 3 sequential
rounds (listing stacks and locks, then every checkpoint read at once); no Pulumi
import. Before: a client per stack and 3 sequential calls per stack (601 calls,
601 rounds for 200 stacks). The simulator runs in this process, so its CPU counts:
when L is small next to the CPU all reads take together (about 8 ms per read here,
most of it moto's), reads that could overlap queue behind the GIL and show as more
rounds (800 stacks: 9 rounds at L = 0.2 s); the structure is still one listing
round and one read round.

Run: ``python benchmarks/host_list.py [--latency 0.2] [--sizes 0,200,800]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

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
    from tests.harness.rounds import CallTimeline, counting_clients
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

    def listed(url: str, count: int) -> float:
        start = time.perf_counter()
        result = runner.invoke(
            app, ["aws", "host", "list", "--backed-url", url, "--output", "json"]
        )
        elapsed = time.perf_counter() - start
        assert result.exit_code == 0, result.stderr
        assert len(json.loads(result.stdout)["hosts"]) == count
        return elapsed

    with tempfile.TemporaryDirectory() as empty:  # load every module before timing
        listed(f"file://{empty}", 0)
    print(f"host list, S3 calls held for L = {options.latency:.3f} s")
    print(
        f"{'stacks':>6} {'file s':>8} {'s3 s':>8} {'s3/file':>8} {'s3 L':>7} "
        f"{'calls':>6} {'calls/stack':>11} {'rounds':>6} {'clients':>7}"
    )
    for count in sizes:
        state = files(count)
        with tempfile.TemporaryDirectory() as root:
            for key, data in state.items():
                path = Path(root) / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            file_time = listed(f"file://{root}", count)
        with mock_aws():
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="bench-state")
            for key, data in state.items():
                s3.put_object(Bucket="bench-state", Key=f"ci/{key}", Body=data)
            timeline = CallTimeline(latency=options.latency)
            boto3.DEFAULT_SESSION = None  # the run starts with no client, as a fresh process
            with counting_clients() as created, installed(timeline.handlers()):
                s3_time = listed("s3://bench-state/ci?region=us-east-1", count)
        calls = timeline.count("s3")
        print(
            f"{count:>6} {file_time:>8.2f} {s3_time:>8.2f} {s3_time / file_time:>8.1f} "
            f"{s3_time / options.latency:>7.1f} {calls:>6} "
            f"{calls / max(count, 1):>11.2f} {timeline.rounds('s3'):>6} {created['s3']:>7}"
        )
    print("targets: clients 1; rounds <= 3 at 200 stacks; calls = stacks + 2 (+1 per 1000 keys)")


if __name__ == "__main__":
    main()
