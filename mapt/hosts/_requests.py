"""The one validation of what a host create or destroy is asked: plain fields to typed requests.

``mapt aws host create`` and the service's ``POST /v1/hosts`` take the same inputs,
named after the command's flags with underscores (``os``, ``spot``, ``cpus``,
``compute_sizes``, ``timeout``, ``ghactions_runner_repo``, ...). ``create_request``
checks them all, in the order the command always has, and builds a
``CreateHostRequest``; bad input is an ``InputError`` naming the field (as its flag,
``--cpus``, unless the caller names fields otherwise) and nothing has been created,
written or asked of AWS. A field left out takes the command's default; a field given
counts as given even with its default value (``--cpus 8 --compute-sizes m5.large`` is
refused). The CLI hands in only what was given on its command line or environment;
a JSON body holds only what its client sent.

Secret fields (``rh_subscription_password``, ``ghactions_runner_token``) may be a
function returning the value, so the CLI reads a secret file only once the checks
before it passed; their value never appears in a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, cast

from mapt.core import (
    InputError,
    RunContext,
    check_region_name,
    comma_list,
    parse_duration,
    parse_tags,
    region_from_environment,
    register_secret,
    shown,
    validate_host_project_name,
)
from mapt.hosts._runner import GitHubAppCredentials, RunnerRequest, runner_scope

if TYPE_CHECKING:
    from mapt.allocation import ComputeRequest, SpotArgs
    from mapt.integrations.github import RunnerScope
    from mapt.targets.aws import HostRequest

# How a message names a field: the CLI's flag (``spot_max_attempts`` ->
# ``--spot-max-attempts``) by default; a JSON API may name it as sent.
FieldName = Callable[[str], str]
# A plain value, or for a secret field a function that reads it.
Fields = Mapping[str, object]


def flag_name(field_name: str) -> str:
    """The flag of a field: ``compute_sizes`` -> ``--compute-sizes``."""
    return "--" + field_name.replace("_", "-")


# How many spot deployments one create tries before giving up or falling back.
DEFAULT_SPOT_ATTEMPTS = 3
DEFAULT_LOCK_TIMEOUT = "5m"
# An AWS availability zone: its region's name and one letter (us-east-1a, us-gov-west-1b).
AVAILABILITY_ZONE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]")
# Longer than a week is surely a typo for a CI machine.
MAX_LIFETIME = timedelta(days=7)
# The spot product priced for each operating system (its licence is in the price).
PRODUCT_DESCRIPTIONS = {
    "rhel": "Red Hat Enterprise Linux",
    "fedora": "Linux/UNIX",
    "windows": "Windows",
}

# Fields that describe the machine's shape; ``compute_sizes`` names the types instead.
SHAPE_FIELDS = ("cpus", "memory", "gpus", "gpu_manufacturer", "nested_virt", "compute_families")
COMPUTE_FIELDS = (*SHAPE_FIELDS, "arch", "compute_sizes")
SPOT_FIELDS = ("spot_eviction_tolerance", "spot_increase_rate", "spot_excluded_regions")
# Fields that tune spot choices, and fields that describe the runner: each group is
# refused without the field it depends on.
SPOT_TUNING = (
    *SPOT_FIELDS,
    "spot_max_attempts",
    "spot_fallback_on_demand",
    "spot_load_balancer",
)
RUNNER_SETTINGS = (
    "ghactions_runner_token",
    "ghactions_runner_labels",
    "ghactions_runner_ephemeral",
)
APP_FIELDS = ("ghactions_app_id", "ghactions_app_installation_id", "ghactions_app_private_key")
SECRET_FIELDS = ("rh_subscription_password", "ghactions_runner_token")
# What the state and the run are named by: the project is ``project_name`` (the flag)
# or ``name`` (the service's spelling), not both.
CONTEXT_FIELDS = ("project_name", "name", "backed_url", "secrets_provider", "debug")
CREATE_FIELDS = frozenset(
    {
        *CONTEXT_FIELDS,
        *COMPUTE_FIELDS,
        *SPOT_TUNING,
        *RUNNER_SETTINGS,
        *APP_FIELDS,
        "os",
        "region",
        "availability_zone",
        "conn_details_output",
        "tags",
        "version",
        "disk_size",
        "airgap",
        "service_endpoints",
        "spot",
        "dns_zone",
        "ami_name",
        "ami_owner",
        "ami_username",
        "rh_subscription_username",
        "rh_subscription_password",
        "timeout",
        "lock_timeout",
        "ghactions_runner_repo",
        "ghactions_runner_org",
    }
)
DESTROY_FIELDS = frozenset(
    {
        *CONTEXT_FIELDS,
        *APP_FIELDS,
        "force_destroy",
        "keep_state",
        "lock_timeout",
        "ghactions_runner_repo",
        "ghactions_runner_org",
    }
)


@dataclass(frozen=True)
class CreateHostRequest:
    """A validated host create: everything ``AwsHostTarget.create`` needs but AWS's answers.

    ``host`` has no runner yet: ``runner`` is registered (a token obtained from GitHub)
    by the create itself, once the prerequisites are checked. ``lock_timeout`` is in
    seconds; ``conn_dir`` is the checked connection folder, or None for none.
    """

    context: RunContext
    host: HostRequest
    compute: ComputeRequest
    spot: SpotArgs | None = None
    secrets_provider: str | None = None
    conn_dir: Path | None = None
    lock_timeout: float = 300.0
    max_attempts: int = DEFAULT_SPOT_ATTEMPTS
    fallback_on_demand: bool = False
    runner: RunnerRequest | None = field(default=None, repr=False)
    availability_zone: str | None = None

    @property
    def project(self) -> str:
        return self.context.project_name


@dataclass(frozen=True)
class DestroyHostRequest:
    """A validated host destroy. ``runner_scope`` is where the caller says the project's
    runner is (only a runner the host stack recorded is ever removed)."""

    context: RunContext
    secrets_provider: str | None = None
    force: bool = False
    keep_state: bool = False
    lock_timeout: float = 300.0
    runner_scope: RunnerScope | None = None
    app: GitHubAppCredentials = field(default_factory=GitHubAppCredentials)

    @property
    def project(self) -> str:
        return self.context.project_name


def create_request(fields: Fields, *, name: FieldName = flag_name) -> CreateHostRequest:
    """Check every create field and build the request; ``InputError`` naming the first bad one.

    The checks, in order: the compute request, the run context (region, tags, backend
    URL, project name), the lifetime, the lock timeout, the spot attempts, the host
    request (OS, version, disk, air gap, image overrides, RHEL subscription), the spot
    choice, the connection folder, the runner (its scope, token, labels and App), the
    secrets provider. Nothing is asked of AWS or GitHub and nothing is written.
    """
    from mapt.stacks import validate_secrets_provider
    from mapt.targets import check_connection_folder
    from mapt.targets.aws import DEFAULT_DISK_SIZE_GIB, HostRequest

    read = _Reader(fields, name, CREATE_FIELDS)
    compute = compute_from_fields(fields, name=name)
    zone = read.text("availability_zone")
    if zone is None:
        region = requested_region(read.text("region"), name("region"))
    else:  # the zone's region, over AWS_REGION's: only a --region given must agree
        region = zone_region(zone, read.text("region"), name("availability_zone"), name("region"))
    tags = _tags(read)
    context = _context(read, region=region, tags=tags)
    expires_at = None
    timeout = read.text("timeout")
    if timeout is not None:
        lifetime = parse_duration(timeout, flag=name("timeout"), maximum=MAX_LIFETIME)
        expires_at = datetime.now(timezone.utc).replace(microsecond=0) + lifetime
    lock_timeout = _lock_timeout(read)
    attempts = read.whole("spot_max_attempts", DEFAULT_SPOT_ATTEMPTS)
    if attempts < 1:
        raise InputError(f"{name('spot_max_attempts')} {attempts} must be at least 1")
    airgap = read.flag("airgap")
    if not airgap:
        read.refuse_without(("service_endpoints",), name("airgap"))
    dns_zone = read.text("dns_zone")
    if dns_zone is not None:
        from mapt.targets.aws import check_zone_name

        dns_zone = check_zone_name(dns_zone, flag=name("dns_zone"))
    else:
        read.refuse_without(("spot_load_balancer",), name("dns_zone"))
    os_name = read.text("os")
    if os_name is None:
        raise InputError(f"{name('os')} is required: rhel, fedora or windows")
    host = HostRequest(
        os=os_name,  # type: ignore[arg-type]  # validated by HostRequest
        version=read.text("version"),
        arch=compute.arch or "x86_64",  # the named types' may replace it at create
        disk_size=read.whole("disk_size", DEFAULT_DISK_SIZE_GIB),
        airgap=airgap,
        service_endpoints=read.items("service_endpoints"),
        ami_name=read.text("ami_name"),
        ami_owner=read.text("ami_owner"),
        ami_username=read.text("ami_username"),
        rh_subscription_username=read.text("rh_subscription_username"),
        rh_subscription_password=read.secret("rh_subscription_password"),
        expires_at=expires_at,
        dns_zone=dns_zone,
        spot_load_balancer=read.flag("spot_load_balancer"),
    )
    spot = read.flag("spot")
    spot_choice = spot_from_fields(fields, name=name) if spot else None
    if not spot:
        read.refuse_without(SPOT_TUNING, name("spot"))
    # Checked on a dry run too: it fails where the real run would.
    conn_output = read.text("conn_details_output")
    conn_dir = None if conn_output is None else check_connection_folder(conn_output)
    runner = _runner(read)
    provider = validate_secrets_provider(read.text("secrets_provider"))
    return CreateHostRequest(
        context=context,
        host=host,
        compute=compute,
        spot=spot_choice,
        secrets_provider=provider,
        conn_dir=conn_dir,
        lock_timeout=lock_timeout,
        max_attempts=attempts,
        fallback_on_demand=read.flag("spot_fallback_on_demand"),
        runner=runner,
        availability_zone=zone,
    )


def destroy_request(fields: Fields, *, name: FieldName = flag_name) -> DestroyHostRequest:
    """Check every destroy field and build the request; ``InputError`` naming the bad one.

    The GitHub App's values are checked as create checks them: the runner's removal
    after the host is gone never fails, so it cannot be where a typo is found.
    """
    from mapt.stacks import validate_secrets_provider

    read = _Reader(fields, name, DESTROY_FIELDS)
    context = _context(read, region=None, tags={})
    provider = validate_secrets_provider(read.text("secrets_provider"))
    lock_timeout = _lock_timeout(read)
    scope = runner_scope(read.text("ghactions_runner_repo"), read.text("ghactions_runner_org"))
    return DestroyHostRequest(
        context=context,
        secrets_provider=provider,
        force=read.flag("force_destroy"),
        keep_state=read.flag("keep_state"),
        lock_timeout=lock_timeout,
        runner_scope=scope,
        app=_app(read),
    )


def compute_from_fields(fields: Fields, *, name: FieldName = flag_name) -> ComputeRequest:
    """A validated ``ComputeRequest`` from the compute fields (``cpus``, ``compute_sizes``...).

    ``compute_sizes`` names the types and excludes the shape fields; ``arch`` not
    given leaves the architecture to the named types (x86_64 for a shape).
    """
    from mapt.allocation import ComputeRequest

    read = _Reader(fields, name, None)
    explicit = [key for key in SHAPE_FIELDS if read.given(key)]
    sizes = fields.get("compute_sizes")
    if sizes is not None and explicit:
        named = ", ".join(name(key) for key in explicit)
        raise InputError(
            f"{name('compute_sizes')} {shown(sizes)} and {named} are mutually "
            "exclusive: name the instance types, or describe the machine"
        )
    values: dict[str, object] = {}
    if read.given("cpus"):
        values["cpus"] = read.whole("cpus", 0)
    if read.given("memory"):
        values["memory_gib"] = read.number("memory", 0.0)
    if read.given("gpus"):
        values["gpus"] = read.whole("gpus", 0)
    with _fields_named(name):
        return ComputeRequest(
            **values,  # type: ignore[arg-type]  # each checked above
            arch=read.text("arch"),
            gpu_manufacturer=read.text("gpu_manufacturer"),
            nested_virt=read.flag("nested_virt"),
            compute_sizes=read.items("compute_sizes"),
            compute_families=read.items("compute_families"),
        )


def spot_from_fields(fields: Fields, *, name: FieldName = flag_name) -> SpotArgs:
    """Validated ``SpotArgs`` from the spot fields (tolerance, increase rate, exclusions)."""
    from mapt.allocation import SpotArgs

    read = _Reader(fields, name, None)
    excluded = read.items("spot_excluded_regions")
    for region in excluded:
        check_region_name(region, f"{name('spot_excluded_regions')} item")
    values: dict[str, object] = {}
    if read.given("spot_increase_rate"):
        values["increase_rate"] = read.number("spot_increase_rate", 0.0)
    with _fields_named(name):
        return SpotArgs(
            tolerance=read.text("spot_eviction_tolerance") or "lowest",
            excluded_regions=excluded,
            **values,  # type: ignore[arg-type]  # checked above
        )


# The inputs the allocation's request types name otherwise (their fields).
_REQUEST_TYPE_INPUTS = {
    "memory_gib": "memory",
    "tolerance": "spot_eviction_tolerance",
    "increase_rate": "spot_increase_rate",
}


@contextmanager
def _fields_named(name: FieldName) -> Iterator[None]:
    """A request type's ``InputError`` with its ``field`` named as the caller names the
    input (``--memory`` for ``memory_gib``): its message words the field in prose
    (``memory 0 must be ...``), and the CLI names a variable only by its flag."""
    try:
        yield
    except InputError as error:
        if error.field is not None:
            error.field = name(_REQUEST_TYPE_INPUTS.get(error.field, error.field))
        raise


def zone_region(zone: str, region: str | None, what: str, region_name: str) -> str:
    """The region of availability zone ``zone`` (its name without the last letter),
    which must be ``region`` when one is given (checked too); ``InputError`` naming
    ``what`` (or ``region_name``)."""
    if not AVAILABILITY_ZONE.fullmatch(zone):
        raise InputError(
            f"{what} {shown(zone)} is not an availability zone name such as us-east-1a"
        )
    home = check_region_name(zone[:-1], f"{what} {shown(zone)}: region")
    if region is not None and check_region_name(region, region_name) != home:
        raise InputError(f"{what} {zone} is not in {region_name} {region}")
    return home


def requested_region(value: str | None, name: str = "--region") -> str | None:
    """The region asked for, else ``AWS_REGION``/``AWS_DEFAULT_REGION``, checked.

    The message names the field or the variable the bad name came from.
    """
    if value is not None:
        return check_region_name(value, name)
    return region_from_environment()


# -- reading fields ----------------------------------------------------------------------


class _Reader:
    """Typed reads of plain fields, each refusing a value of the wrong kind by name.

    ``known`` (when given) is every field accepted: any other is refused, so a typo
    in a JSON body is not silently ignored.
    """

    def __init__(self, fields: Fields, name: FieldName, known: Collection[str] | None) -> None:
        self.fields = fields
        self.name = name
        if known is not None:
            unknown = sorted(key for key in fields if key not in known)
            if unknown:
                raise InputError(
                    f"unknown field {unknown[0]!r}: not an input of this operation",
                    hint=f"Accepted: {', '.join(sorted(known))}.",
                )

    def given(self, key: str) -> bool:
        return self.fields.get(key) is not None

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        if value is None:
            return None
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str):
            raise InputError(f"{self.name(key)} {shown(value)} is not text")
        if not value.strip():
            raise InputError(
                f"{self.name(key)} {value!r} is empty: give a value, or leave the field out"
            )
        return value

    def whole(self, key: str, default: int) -> int:
        value = self.fields.get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{self.name(key)} {shown(value)} is not a whole number")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.fields.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{self.name(key)} {shown(value)} is not a number")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self.fields.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise InputError(f"{self.name(key)} {shown(value)} is not true or false")
        return value

    def items(self, key: str) -> tuple[str, ...]:
        """A comma-separated text (the flag's form) or a list of texts (JSON's)."""
        value = self.fields.get(key)
        if value is None or isinstance(value, str):
            return comma_list(self.name(key), value)
        if isinstance(value, (list, tuple)) and all(
            isinstance(item, str) and item.strip() for item in value
        ):
            return tuple(item.strip() for item in value)
        raise InputError(
            f"{self.name(key)} {shown(value)} is not a comma-separated text or a list of texts"
        )

    def secret(self, key: str) -> str | None:
        """A secret's value, read now if it is a function; registered for redaction."""
        value = self.fields.get(key)
        if callable(value):
            value = cast(Callable[[], object], value)()
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise InputError(f"{self.name(key)} is not a non-empty text")
        register_secret(value)
        return value

    def refuse_without(self, keys: Collection[str], needed: str) -> None:
        """Fields that mean something only with ``needed`` are refused without it.

        A secret field's value is never echoed.
        """
        for key in keys:
            if self.given(key):
                value = "" if key in SECRET_FIELDS else f" {shown(self.fields[key])}"
                raise InputError(f"{self.name(key)}{value} applies only with {needed}")


def _context(read: _Reader, *, region: str | None, tags: dict[str, str]) -> RunContext:
    from mapt.stacks import resolve_backend

    backend_url = read.text("backed_url")
    resolve_backend(backend_url)  # a bad URL is refused before anything is created
    if read.given("project_name") and read.given("name"):
        raise InputError(
            f"{read.name('project_name')} and {read.name('name')} both name the project: give one"
        )
    project_field = "name" if read.given("name") else "project_name"
    project = read.text(project_field)
    if project is None:
        raise InputError(f"{read.name('project_name')} is required: the project's name")
    return RunContext(
        project_name=validate_host_project_name(project, read.name(project_field)),
        backend_url=backend_url,
        region=region,
        tags=tags,
        debug=read.flag("debug"),
    )


def _tags(read: _Reader) -> dict[str, str]:
    """``k=v,k2=v2`` (the flag's form) or a JSON object of texts."""
    value = read.fields.get("tags")
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise InputError(f"{read.name('tags')} {shown(value)} holds a value that is not text")
        tags: dict[str, str] = {}
        for key, text in value.items():
            tags.update(parse_tags(f"{key}={text}"))
        return tags
    return parse_tags(read.text("tags") or "")


def _lock_timeout(read: _Reader) -> float:
    text = read.text("lock_timeout") or DEFAULT_LOCK_TIMEOUT
    return parse_duration(text, flag=read.name("lock_timeout")).total_seconds()


def _app(read: _Reader) -> GitHubAppCredentials:
    """The GitHub App given, checked alike for create and destroy (``check``)."""
    key = read.text("ghactions_app_private_key")
    app = GitHubAppCredentials(
        app_id=read.text("ghactions_app_id"),
        installation_id=read.text("ghactions_app_installation_id"),
        private_key=None if key is None else Path(key),
    )
    app.check()
    return app


def _runner(read: _Reader) -> RunnerRequest | None:
    """The runner asked for (its scope, token, labels), or None; settings need a scope."""
    from mapt.integrations.github import runner_labels

    scope = runner_scope(read.text("ghactions_runner_repo"), read.text("ghactions_runner_org"))
    if scope is None:
        needed = (
            f"{read.name('ghactions_runner_repo')} OWNER/REPO or "
            f"{read.name('ghactions_runner_org')} ORG"
        )
        read.refuse_without(RUNNER_SETTINGS, needed)
        return None
    token = read.secret("ghactions_runner_token")
    labels = runner_labels(read.items("ghactions_runner_labels"))
    return RunnerRequest(
        scope=scope,
        token=token,
        labels=labels,
        ephemeral=read.flag("ghactions_runner_ephemeral"),
        app=_app(read),
    )
