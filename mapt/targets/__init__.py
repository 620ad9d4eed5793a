"""Targets: the Pulumi programs that build machines (networks, hosts) per cloud.

A target turns an allocation result plus target options into a Pulumi program, names
its stack, and says which outputs become connection files. It may import
``mapt.allocation``, ``mapt.stacks``, ``mapt.core`` and ``pulumi``/``pulumi_aws``; it
never parses flags or prints (that is ``mapt.cli``).

This package holds what every target shares and that needs no cloud: waiting for a
machine to be ready over SSH, running commands there with their secret on standard
input, and writing connection files. Cloud targets live in
subpackages (``mapt.targets.aws``). Importing it loads neither Pulumi nor paramiko.
"""

from mapt.targets._connection import check_connection_folder, write_connection_files
from mapt.targets._readiness import (
    CLOUD_INIT_COMMAND,
    DEFAULT_READY_TIMEOUT,
    RemoteCommand,
    RemoteRunner,
    SshAccess,
    SshEndpoint,
    load_private_key,
    remote_session,
    wait_until_ready,
)

__all__ = [
    "CLOUD_INIT_COMMAND",
    "DEFAULT_READY_TIMEOUT",
    "RemoteCommand",
    "RemoteRunner",
    "SshAccess",
    "SshEndpoint",
    "check_connection_folder",
    "load_private_key",
    "remote_session",
    "wait_until_ready",
    "write_connection_files",
]
