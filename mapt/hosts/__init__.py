"""Hosts: the lifecycle of a machine for a CI job, as one typed library for every caller.

The CLI (``mapt aws host ...``) and the service (``mapt serve``) are thin shells over
this layer; neither takes a domain decision. It sits between them and the layers it
drives (``mapt.allocation``, ``mapt.targets``, ``mapt.integrations``, ``mapt.stacks``),
and imports neither ``mapt.cli`` nor any heavy package at import time.

- ``create_request(fields)`` / ``destroy_request(fields)``: the one validation of what
  a caller asks, from plain fields named after the CLI's flags with underscores
  (``os``, ``spot``, ``cpus``, ``compute_sizes``, ``timeout``, ``name`` or
  ``project_name``...), to a ``CreateHostRequest`` / ``DestroyHostRequest``;
  ``InputError`` naming the field otherwise. ``compute_from_fields`` and
  ``spot_from_fields`` are its parts that ``mapt aws spot-price`` shares.
- ``AwsHostTarget(services, progress=...)``: ``create`` (allocate, deploy with spot
  failover, confirm the launch, wait for SSH, deliver secrets, write connection
  files), ``update`` (resize: a new allocation, the machine replaced), ``refresh_ip``
  (a new public address, the old one released), ``dry_run``, ``destroy``, ``status``,
  ``list``; each answers a frozen record (``HostRecord``, ``AddressChange``,
  ``DestroyRecord``, ``HostStatus``) with ``to_dict`` for JSON, secrets left out.
- ``HostServices``: what the lifecycle acts through (engine factory, launch,
  readiness, setup), injected so the CLI, the service and tests choose real,
  sandbox or in-memory implementations.
- ``plan_replacement``: what an interrupted spot host does (stay, move, on demand);
  ``open_breakers``: the circuit breakers interruptions open (both pure).
- ``reporting_progress`` / ``Progress``: the progress lines of one call, for a caller
  that keeps them (the service's execution log).

``create_host``, ``dry_run_host``, ``destroy_host``, ``list_hosts`` and
``host_status`` are the verbs on an explicit engine, for callers that hold one.
"""

from mapt.hosts._breaker import (
    DEFAULT_BREAKER_COOLDOWN,
    DEFAULT_BREAKER_INTERRUPTIONS,
    DEFAULT_BREAKER_WINDOW,
    BreakerPolicy,
    Interruption,
    OpenBreaker,
    Place,
    open_breakers,
)
from mapt.hosts._costs import host_costs
from mapt.hosts._create import (
    GET_AMI,
    HostChecks,
    SpotAttemptsExhaustedError,
    create_host,
    dry_run_host,
    image_answer,
)
from mapt.hosts._destroy import destroy_hint, destroy_host
from mapt.hosts._progress import Progress, ProgressStream, reporting_progress
from mapt.hosts._records import (
    AddressChange,
    DestroyRecord,
    HostConnection,
    HostRecord,
    HostStatus,
)
from mapt.hosts._replacement import (
    BREAKER_OPEN,
    ReplacementOutcome,
    ReplacementPlan,
    plan_replacement,
)
from mapt.hosts._requests import (
    COMPUTE_FIELDS,
    CREATE_FIELDS,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_SPOT_ATTEMPTS,
    DESTROY_FIELDS,
    MAX_LIFETIME,
    PRODUCT_DESCRIPTIONS,
    SECRET_FIELDS,
    SPOT_TUNING,
    CreateHostRequest,
    DestroyHostRequest,
    FieldName,
    Fields,
    compute_from_fields,
    create_request,
    destroy_request,
    flag_name,
    requested_region,
    spot_from_fields,
)
from mapt.hosts._runner import (
    GitHubAppCredentials,
    RunnerRequest,
    deregister_runner,
    register_runner,
    runner_scope,
)
from mapt.hosts._services import (
    EngineFactory,
    HealthCheck,
    HostServices,
    HostSetupStep,
    LaunchCheck,
    ReadinessCheck,
    ReplacementWait,
    auto_scaling_launch,
    auto_scaling_replacement,
    aws_host_health,
    pulumi_cli_present,
    pulumi_engine,
    ssh_readiness,
)
from mapt.hosts._status import (
    HostInterruptions,
    HostNotFoundError,
    host_interruptions,
    host_status,
    list_hosts,
)
from mapt.hosts._target import AwsHostTarget

__all__ = [
    "BREAKER_OPEN",
    "COMPUTE_FIELDS",
    "CREATE_FIELDS",
    "DEFAULT_BREAKER_COOLDOWN",
    "DEFAULT_BREAKER_INTERRUPTIONS",
    "DEFAULT_BREAKER_WINDOW",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_SPOT_ATTEMPTS",
    "DESTROY_FIELDS",
    "GET_AMI",
    "MAX_LIFETIME",
    "PRODUCT_DESCRIPTIONS",
    "SECRET_FIELDS",
    "SPOT_TUNING",
    "AddressChange",
    "AwsHostTarget",
    "BreakerPolicy",
    "CreateHostRequest",
    "DestroyHostRequest",
    "DestroyRecord",
    "EngineFactory",
    "FieldName",
    "Fields",
    "GitHubAppCredentials",
    "HealthCheck",
    "HostChecks",
    "HostConnection",
    "HostInterruptions",
    "HostNotFoundError",
    "HostRecord",
    "HostServices",
    "HostSetupStep",
    "HostStatus",
    "Interruption",
    "LaunchCheck",
    "OpenBreaker",
    "Place",
    "Progress",
    "ProgressStream",
    "ReadinessCheck",
    "ReplacementOutcome",
    "ReplacementPlan",
    "ReplacementWait",
    "RunnerRequest",
    "SpotAttemptsExhaustedError",
    "auto_scaling_launch",
    "auto_scaling_replacement",
    "aws_host_health",
    "compute_from_fields",
    "create_host",
    "create_request",
    "deregister_runner",
    "destroy_hint",
    "destroy_host",
    "destroy_request",
    "dry_run_host",
    "flag_name",
    "host_costs",
    "host_interruptions",
    "host_status",
    "image_answer",
    "list_hosts",
    "open_breakers",
    "plan_replacement",
    "pulumi_cli_present",
    "pulumi_engine",
    "register_runner",
    "reporting_progress",
    "requested_region",
    "runner_scope",
    "spot_from_fields",
    "ssh_readiness",
]
