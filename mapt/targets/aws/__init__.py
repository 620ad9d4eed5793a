"""AWS targets: VPC networks (standard and air-gapped) and spot or on-demand hosts.

The host target's interface (see ``specs/concepts/targets.md``): a ``HostRequest``
says what to build, ``host_stack_name`` names the stack, ``deploy_host`` runs its
phase(s) through the caller's engine and waits for readiness, and
``host_connection_values`` selects the outputs written as connection files. Importing
this package loads neither Pulumi nor ``pulumi_aws``; the programs do when they run.
"""

from mapt.targets.aws._host import (
    CONNECTION_OUTPUTS,
    HOST_STACK,
    PHASE_AIRGAP,
    PHASE_BOOTSTRAP,
    PHASE_CREATE,
    PLACEMENT_OUTPUTS,
    SECRET_OUTPUTS,
    HostPhase,
    Program,
    ReadinessFunction,
    UpFunction,
    deploy_host,
    host_access,
    host_connection_values,
    host_output_names,
    host_phases,
    host_program,
    host_stack_name,
)
from mapt.targets.aws._request import (
    DEFAULT_DISK_SIZE_GIB,
    DEFAULT_VERSIONS,
    OPERATING_SYSTEMS,
    SERVICE_ENDPOINTS,
    HostRequest,
    ImageLookup,
    OperatingSystem,
)

__all__ = [
    "CONNECTION_OUTPUTS",
    "DEFAULT_DISK_SIZE_GIB",
    "DEFAULT_VERSIONS",
    "HOST_STACK",
    "OPERATING_SYSTEMS",
    "PHASE_AIRGAP",
    "PHASE_BOOTSTRAP",
    "PHASE_CREATE",
    "PLACEMENT_OUTPUTS",
    "SECRET_OUTPUTS",
    "SERVICE_ENDPOINTS",
    "HostPhase",
    "HostRequest",
    "ImageLookup",
    "OperatingSystem",
    "Program",
    "ReadinessFunction",
    "UpFunction",
    "deploy_host",
    "host_access",
    "host_connection_values",
    "host_output_names",
    "host_phases",
    "host_program",
    "host_stack_name",
]
