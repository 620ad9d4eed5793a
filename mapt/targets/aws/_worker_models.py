"""Importing this module parses the botocore data a host operation's worker reads.

Into the process's shared loader (``mapt.core.aws_session``): the model of each
service a host's create, replacement, health check or sandbox run calls, and the
endpoint data. The workers' forkserver imports it (an operation's ``preload``), so each
worker starts with them parsed instead of parsing them again (EC2's alone is 4 MB of
JSON); the parsed data is moved out of the garbage collector's sight, as a ranking's
first client's is (``mapt.allocation``).
"""

from __future__ import annotations

from mapt.allocation import load_client_data
from mapt.core import aws_session
from mapt.targets.aws import SANDBOX_SERVICES

# The sandbox kinds' services are those the real programs' checks call too (launch,
# health, address, DNS, the event intake).
_session = aws_session()
for _service in SANDBOX_SERVICES:
    load_client_data(_session, _service)
