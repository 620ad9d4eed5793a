"""moto_server as the service's sandbox modules run it: fewer regions opted in, and
launches refused in chosen zones when asked. Run as a script (``python sandbox_moto.py
-H ... -p ...``, moto_server's own arguments), in its own process.

- ``MAPT_TEST_ENABLED_REGIONS`` (comma-separated): every other region of moto's list is
  answered as not opted in (``DescribeRegions``), as ``tests/harness/service_hosts.py``
  does for the in-process hosts. A sandbox allocation asks each opted-in region for its
  zones, images and prices with a client of its own, and moto builds each region's EC2
  backend (a default VPC, its subnets, the sandbox's images) on its first call: with
  moto's 24, that was a third of a sandbox create's worker and much of moto's CPU. The
  service's sandbox modules check what the service does with an allocation's answer,
  not how many regions it scans (``tests/allocation`` scans them all).
- ``MAPT_TEST_REFUSED_ZONES``: the Auto Scaling groups refuse launches in the zones the
  file lists (``tests/harness/refusing_moto.py``).
"""

from __future__ import annotations

import os
import sys

ENABLED_REGIONS_VARIABLE = "MAPT_TEST_ENABLED_REGIONS"


def enable_only(regions: frozenset[str]) -> None:
    """List every region of moto's outside ``regions`` as not opted in."""
    from moto.ec2.models.availability_zones_and_regions import Region, RegionsAndZonesBackend

    unknown = regions - {region.name for region in RegionsAndZonesBackend.regions}
    if unknown:
        raise RuntimeError(f"moto has no region {sorted(unknown)} ({ENABLED_REGIONS_VARIABLE})")
    RegionsAndZonesBackend.regions = [
        region if region.name in regions else Region(region.name, region.endpoint, "not-opted-in")
        for region in RegionsAndZonesBackend.regions
    ]


if __name__ == "__main__":
    from tests.harness.moto_dispatch import cache_dispatch_lookups
    from tests.harness.refusing_moto import REFUSED_ZONES_VARIABLE, patch

    cache_dispatch_lookups()  # as the sandbox's own moto_server does (moto_reset.py)
    enabled = os.environ.get(ENABLED_REGIONS_VARIABLE, "")
    if enabled:
        enable_only(frozenset(enabled.split(",")))
    if os.environ.get(REFUSED_ZONES_VARIABLE):
        patch()
    from moto.server import main

    main(sys.argv[1:])
