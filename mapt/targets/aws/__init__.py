"""AWS targets: VPC networks (standard and air-gapped) and spot or on-demand hosts.

The host target's interface (see ``specs/concepts/targets.md``): a ``HostRequest``
says what to build, ``host_stack_name`` names the stack, ``deploy_host`` runs its
phase(s) through the caller's engine, waits for readiness and hands the host its
secrets over SSH (``configure_host``), and
``host_connection_values`` selects the outputs written as connection files.
``verify_spot_launch`` waits for a spot host's instance and says why AWS refused it;
``find_mapt_resources``, ``plan_sweep`` and ``execute_sweep`` remove what runs left
behind (see ``specs/features/reliability.md``). Importing this package loads neither
Pulumi, ``pulumi_aws`` nor boto3; the programs and AWS calls do when they run.
"""

from mapt.targets.aws._host import (
    CONNECTION_OUTPUTS,
    HOST_STACK,
    OUTPUT_AWAITED_SECRETS,
    OUTPUT_CONFIGURED_INSTANCE,
    OUTPUT_RUNNER_ID,
    OUTPUT_RUNNER_SCOPE,
    PHASE_AIRGAP,
    PHASE_BOOTSTRAP,
    PHASE_CREATE,
    PLACEMENT_OUTPUTS,
    SECRET_OUTPUTS,
    HostPhase,
    Program,
    ReadinessFunction,
    SetupFunction,
    UpFunction,
    deploy_host,
    host_access,
    host_connection_values,
    host_group_name,
    host_output_names,
    host_phases,
    host_program,
    host_stack_name,
    recorded_setup,
)
from mapt.targets.aws._images import GET_AMI, ami_answer
from mapt.targets.aws._launch import (
    CAPACITY_REASONS,
    SpotLaunchError,
    launch_failure,
    verify_spot_launch,
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
from mapt.targets.aws._sandbox import SANDBOX_INVOKES, SANDBOX_KINDS, AwsKind
from mapt.targets.aws._setup import HostSetup, configure_host, fetch_windows_password
from mapt.targets.aws._sweep import (
    DELETION_ORDER,
    ResourceKind,
    SweepAction,
    SweepItem,
    SweepPlan,
    SweepReport,
    SweepTiming,
    TaggedResource,
    delete_resource,
    describe_reasons,
    enabled_regions,
    execute_sweep,
    find_mapt_resources,
    is_not_found,
    plan_sweep,
)

__all__ = [
    "CAPACITY_REASONS",
    "CONNECTION_OUTPUTS",
    "DEFAULT_DISK_SIZE_GIB",
    "DEFAULT_VERSIONS",
    "DELETION_ORDER",
    "GET_AMI",
    "HOST_STACK",
    "OPERATING_SYSTEMS",
    "OUTPUT_AWAITED_SECRETS",
    "OUTPUT_CONFIGURED_INSTANCE",
    "OUTPUT_RUNNER_ID",
    "OUTPUT_RUNNER_SCOPE",
    "PHASE_AIRGAP",
    "PHASE_BOOTSTRAP",
    "PHASE_CREATE",
    "PLACEMENT_OUTPUTS",
    "SANDBOX_INVOKES",
    "SANDBOX_KINDS",
    "SECRET_OUTPUTS",
    "SERVICE_ENDPOINTS",
    "AwsKind",
    "HostPhase",
    "HostRequest",
    "HostSetup",
    "ImageLookup",
    "OperatingSystem",
    "Program",
    "ReadinessFunction",
    "ResourceKind",
    "SetupFunction",
    "SpotLaunchError",
    "SweepAction",
    "SweepItem",
    "SweepPlan",
    "SweepReport",
    "SweepTiming",
    "TaggedResource",
    "UpFunction",
    "ami_answer",
    "configure_host",
    "delete_resource",
    "deploy_host",
    "describe_reasons",
    "enabled_regions",
    "execute_sweep",
    "fetch_windows_password",
    "find_mapt_resources",
    "host_access",
    "host_connection_values",
    "host_group_name",
    "host_output_names",
    "host_phases",
    "host_program",
    "host_stack_name",
    "is_not_found",
    "launch_failure",
    "plan_sweep",
    "recorded_setup",
    "verify_spot_launch",
]
