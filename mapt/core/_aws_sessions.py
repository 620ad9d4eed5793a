"""boto3 sessions that share one botocore loader, so a process parses each model once.

botocore gives every session a loader of its own, and a session's first client of a
service parses that service's model (EC2's: 4 MB of JSON, 0.15 s of CPU on an idle
machine) and the endpoint data through it. A host operation's worker makes several
sessions (the sandbox engine's, the launch and readiness checks', one per health or
address look-up) besides boto3's default one (the allocation's): each parsed the same
files again, and that was a quarter of a sandbox create's worker CPU. ``aws_session``
makes a session whose loader is boto3's default session's (botocore's public
``register_component``), and the workers' forkserver parses the models into it once
for every worker (``mapt.targets.aws._worker_models``).

The loader only reads botocore's data files, so sharing it shares no credentials,
region or configuration: each session keeps its own. boto3 imports here, on first use.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()


def shared_loader() -> Any:
    """The botocore loader of boto3's default session (made now, if there is none)."""
    import boto3

    with _lock:
        return boto3._get_default_session()._session.get_component("data_loader")


def aws_session(**options: Any) -> Any:
    """A new ``boto3.Session(**options)`` whose botocore loader is ``shared_loader()``,
    unless its configuration names other models (``AWS_DATA_PATH``, a profile's
    ``data_path``): then a loader of its own, as botocore makes one."""
    import boto3

    session = boto3.Session(**options)
    core = session._session  # the botocore session (boto3 keeps its own, resources', loader)
    if not core.get_config_variable("data_path"):
        core.register_component("data_loader", shared_loader())
    return session
