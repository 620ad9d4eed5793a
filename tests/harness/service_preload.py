"""What the test server's forkserver builds once for every host worker it forks.

The forkserver imports this module first of the simulated operations' preload
(``SIMULATED_AWS_MODULES`` in ``tests.harness.service_hosts``); the server itself never
does. Every worker forks from the forkserver with what it left here, read-only and
copy-on-write: a worker's changes stay in its own process, so no execution sees
another's (the forkserver runs none).

- One botocore loader and one client class per service (``shared_botocore``, as the
  in-process tests have for their run), installed before moto is imported: moto's EC2
  models ask three new botocore sessions for the regions on import, each parsing EC2's
  service model (a 4 MB JSON), and each worker's sessions (mapt's, moto's) parsed it
  again and rebuilt the EC2 client class (about 800 methods) for each of its clients.
- moto's modules a host operation's requests import when they first reach them (the
  EC2 responses and URLs, the services a deployment's calls touch), and the service
  models moto parses to read each request (``get_service_model``, cached per process
  but built on a request's first use: EC2's took each worker about 0.14 s of CPU, a
  sixth of a pool member's add).
- The replayed market's rows, parsed from the CSV, and their index by zone.
"""

from __future__ import annotations

import importlib
from contextlib import ExitStack

from tests.harness.boto import shared_botocore

# The services a simulated host operation's clients use (the allocation's EC2 and
# Pricing; the rest of a deployment's AWS is the services' stand-ins): every server
# start pays for the ones made up front, whether or not its tests create hosts.
SERVICES = ("ec2", "pricing")
# Kept for the forkserver's life (and so for each worker's): never closed.
_SHARED = ExitStack()
_SHARED.enter_context(shared_botocore(SERVICES))

# After shared_botocore: moto's EC2 models read botocore's data on import.
MOTO_MODULES = (
    "moto", "moto.ec2", "moto.ec2.models", "moto.ec2.responses", "moto.ec2.urls",
    "moto.s3", "moto.sts", "moto.iam.access_control", "moto.events", "moto.cloudwatch",
)  # fmt: skip
for _module in MOTO_MODULES:
    importlib.import_module(_module)

from moto.core.utils import get_service_model  # noqa: E402  (after shared_botocore)

for _service in SERVICES:
    get_service_model(_service)


def _index_the_market() -> None:
    from tests.harness.service_hosts import market_rows
    from tests.harness.spot_market import SpotMarket

    SpotMarket(rows=market_rows())  # its index is kept per rows (``_indexed``)


_index_the_market()
