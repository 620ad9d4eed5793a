"""Importing this module parses the botocore data a host operation's worker reads.

Into the process's shared loader (``mapt.core.shared_loader``): the model of each
service a host's create, replacement, health check or sandbox run calls, and the
endpoint data. The workers' forkserver imports it (an operation's ``preload``), so each
worker starts with them parsed instead of parsing them again (EC2's alone is 4 MB of
JSON); the parsed data is moved out of the garbage collector's sight, as a ranking's
first client's is (``mapt.allocation``).

A failure here is logged at debug level and otherwise ignored: the forkserver dies on
any error its preload raises but ``ImportError``, and with it every execution, for an
AWS configuration (a profile that does not exist, a config file that does not parse)
that each operation reports itself, with botocore's reason, when it calls AWS.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError

from mapt.allocation import load_client_data
from mapt.core import aws_session, get_logger
from mapt.targets.aws import SANDBOX_SERVICES


def _parse_worker_models() -> None:
    # The sandbox kinds' services are those the real programs' checks call too
    # (launch, health, address, DNS, the event intake). The session is thrown away:
    # only what it parsed into the shared loader is kept.
    try:
        session = aws_session()  # boto3 reads the profile's data_path to make its loader
    except BotoCoreError as error:
        get_logger(__name__).debug("parsing the workers' botocore models failed: %s", error)
        return
    load_client_data(session, SANDBOX_SERVICES)


_parse_worker_models()
