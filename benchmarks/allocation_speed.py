"""How long does a fresh spot allocation take when every EC2 call costs L seconds?

Simulated EC2: moto for regions, zones and instance types, the replayed spot market
(tests/data/spot-market.csv.gz, generated) for prices and placement scores, and a fixed
latency L added to every EC2 call. Prints, for a fresh allocation, the wall time in
units of L (target <= 4 L: regions/types -> scores -> zones/prices in parallel) and
the number of EC2 calls (target <= 2 x regions + 4); then the EC2 calls of a re-run
with the ``spotOption`` stack present (target 0).

Two scenarios: placement scores available (AWS answers for its top 10 zones), and
scores unavailable (every usable region is priced: the widest fan-out).

Run: ``python benchmarks/allocation_speed.py [--latency 0.2]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
FAMILIES = ("m5", "m6a", "m6i", "m7a", "m7i", "t3", "t3a")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added per EC2 call")
    latency = parser.parse_args().latency
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        # The simulator's own start-up (bundled AMIs per region) is not EC2 latency.
        MOTO_EC2_LOAD_DEFAULT_AMIS="false",
    )
    import boto3
    from moto import mock_aws

    from mapt.allocation import AllocationArgs, ComputeRequest, SpotArgs, allocation
    from mapt.core import RunContext
    from mapt.stacks import InMemoryEngine
    from tests.harness.spot_market import ApiCallLog, SpotMarket, installed, load_rows

    rows = load_rows()
    args = AllocationArgs(
        compute_request=ComputeRequest(cpus=2, memory_gib=8, compute_families=FAMILIES),
        spot=SpotArgs(tolerance="low"),
    )

    delay = {"seconds": latency}

    def slow(**_: object) -> None:
        time.sleep(delay["seconds"])

    scenarios = (("scores available", {}), ("scores unavailable", {"*": "x"}))
    baseline: dict[str, float] = {}
    for scenario, score_errors, added in [(s, e, d) for s, e in scenarios for d in (0.0, latency)]:
        delay["seconds"] = added
        with mock_aws():
            warm = boto3.client("ec2")
            warm.describe_instance_types(InstanceTypes=["m5.large"])  # load moto's data
            regions = [
                r["RegionName"]
                for r in warm.describe_regions()["Regions"]
                if r.get("OptInStatus") in ("opt-in-not-required", "opted-in")
            ]
            for region in regions:  # build moto's per-region backends before timing
                boto3.client("ec2", region_name=region).describe_availability_zones()
            market = SpotMarket(rows=list(rows), scores=dict(SCORES), score_errors=score_errors)
            log = ApiCallLog()
            engine = InMemoryEngine()
            context = RunContext(project_name="bench")
            with (
                installed(log.handlers()),
                installed(market.handlers()),
                installed([("provide-client-params.ec2", slow)]),
            ):
                start = time.perf_counter()
                allocation(context, args, engine=engine)
                fresh = time.perf_counter() - start
                fresh_calls = log.count()
                start = time.perf_counter()
                allocation(context, args, engine=engine)
                rerun = time.perf_counter() - start
                rerun_calls = log.count() - fresh_calls
        if added == 0.0:
            baseline[scenario] = fresh
            continue
        bound = 2 * len(regions) + 4
        waiting = (fresh - baseline[scenario]) / latency
        print(f"[{scenario}] L = {latency:.3f} s, {len(regions)} usable regions")
        print(
            f"  fresh allocation: {fresh:.2f} s = {fresh / latency:.1f} L in all: "
            f"{waiting:.1f} L waiting on EC2 (target <= 4 L) plus {baseline[scenario]:.2f} s "
            "of CPU (boto3 clients, the simulator) measured at L = 0"
        )
        print(f"  EC2 calls: {fresh_calls} (target <= {bound})")
        print(f"  re-run with spotOption stack: {rerun:.2f} s, {rerun_calls} EC2 calls (target 0)")


if __name__ == "__main__":
    main()
