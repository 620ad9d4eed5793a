"""``mapt aws host create|destroy|list``: a machine for a CI job, and its removal.

Flags keep the Go mapt's names. Every value is checked before anything is created:
the run context, the host request, the compute request, the backend URL, the
secrets provider and the connection folder are all built first, so bad input exits
with code 2 and one line naming it. The flow itself lives in ``_host_flow``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mapt.cli._console import console
from mapt.cli._github import (
    AppId,
    AppInstallationId,
    AppPrivateKey,
    RunnerEphemeral,
    RunnerLabels,
    RunnerOrg,
    RunnerRepo,
    RunnerToken,
    RunnerTokenFile,
    deregister_runner,
    runner_scope,
    runner_spec,
)
from mapt.cli._host_flow import DEFAULT_SPOT_ATTEMPTS
from mapt.cli._options import (
    Arch,
    BackedUrl,
    ComputeFamilies,
    ComputeSizes,
    Cpus,
    Debug,
    ExcludedRegions,
    GpuManufacturer,
    Gpus,
    IncreaseRate,
    LockTimeout,
    Memory,
    NestedVirt,
    Output,
    OutputFormat,
    ProjectName,
    Region,
    Sandbox,
    SecretsProvider,
    Tags,
    Tolerance,
    comma_list,
    compute_request,
    flag_name,
    given,
    option,
    requested_region,
    secret_file_option,
    secret_option,
    secret_value,
    spot_args,
    whole_number,
)
from mapt.core import InputError, RunContext, shown

if TYPE_CHECKING:
    from mapt.cli._host_flow import CreateOutcome, DestroyOutcome, HostSummary
    from mapt.integrations.github import RegisteredRunner
    from mapt.stacks import Engine

host_app = typer.Typer(
    help="A host (RHEL, Fedora or Windows) for a CI job: create, destroy, list.",
    no_args_is_help=True,
)

# The spot product priced for each operating system (its licence is in the price).
_PRODUCT_DESCRIPTIONS = {
    "rhel": "Red Hat Enterprise Linux",
    "fedora": "Linux/UNIX",
    "windows": "Windows",
}
# Flags that tune spot choices, and flags that describe the runner: each group is
# refused without the flag it depends on.
_SPOT_TUNING = (
    "spot_eviction_tolerance",
    "spot_increase_rate",
    "spot_excluded_regions",
    "spot_max_attempts",
    "spot_fallback_on_demand",
)
_RUNNER_SETTINGS = (
    "ghactions_runner_token",
    "ghactions_runner_token_file",
    "ghactions_runner_labels",
    "ghactions_runner_ephemeral",
)
# Longer than a week is surely a typo for a CI machine.
MAX_LIFETIME = timedelta(days=7)


@host_app.command("create")
def create(
    ctx: typer.Context,
    project_name: ProjectName,
    os_name: Annotated[str, option("--os", "Operating system: rhel, fedora or windows.")],
    backed_url: BackedUrl = None,
    secrets_provider: SecretsProvider = None,
    region: Region = None,
    conn_details_output: Annotated[
        str | None,
        option(
            "--conn-details-output",
            "Folder for the connection files (host, username, id_rsa, ...), mode 0600.",
        ),
    ] = None,
    tags: Tags = None,
    version: Annotated[
        str | None, option("--version", "OS release: RHEL 9.4 (default), Fedora 41 (default).")
    ] = None,
    arch: Arch = None,
    disk_size: Annotated[
        int, option("--disk-size", "Root disk size in GiB.", parser=whole_number)
    ] = 200,
    airgap: Annotated[
        bool, option("--airgap", "No way out to the internet; reached through a bastion.")
    ] = False,
    service_endpoints: Annotated[
        str | None,
        option("--service-endpoints", "VPC endpoints to add when air-gapped: s3,ecr,ssm."),
    ] = None,
    spot: Annotated[
        bool, option("--spot", "Run on spot capacity in the cheapest region/AZ that has it.")
    ] = False,
    spot_eviction_tolerance: Tolerance = "lowest",
    spot_increase_rate: IncreaseRate = 30.0,
    spot_excluded_regions: ExcludedRegions = None,
    cpus: Cpus = 8,
    memory: Memory = 64,
    gpus: Gpus = 0,
    gpu_manufacturer: GpuManufacturer = None,
    nested_virt: NestedVirt = False,
    compute_sizes: ComputeSizes = None,
    compute_families: ComputeFamilies = None,
    ami_name: Annotated[
        str | None, option("--ami-name", "Windows: image name (glob) instead of Server 2022.")
    ] = None,
    ami_owner: Annotated[
        str | None, option("--ami-owner", "Windows: the image's owner (account id or alias).")
    ] = None,
    ami_username: Annotated[
        str | None, option("--ami-username", "Windows: the account to create and log in as.")
    ] = None,
    rh_subscription_username: Annotated[
        str | None, option("--rh-subscription-username", "RHEL: register with this account.")
    ] = None,
    # Secret flags (this one and the runner token) are read with secret_value(ctx, flag).
    rh_subscription_password: Annotated[
        str | None, secret_option("--rh-subscription-password", "RHEL: the account's password.")
    ] = None,
    rh_subscription_password_file: Annotated[
        str | None, secret_file_option("--rh-subscription-password")
    ] = None,
    timeout: Annotated[
        str | None,
        option(
            "--timeout",
            "Lifetime, e.g. 2h or 1h30m: the host powers itself off and is tagged "
            "mapt:expires-at for 'mapt aws sweep --expired'.",
        ),
    ] = None,
    spot_max_attempts: Annotated[
        int,
        option(
            "--spot-max-attempts",
            "Spot offers to deploy on before giving up when launches fail.",
            parser=whole_number,
        ),
    ] = DEFAULT_SPOT_ATTEMPTS,
    spot_fallback_on_demand: Annotated[
        bool,
        option("--spot-fallback-on-demand", "When spot cannot launch, use on-demand capacity."),
    ] = False,
    lock_timeout: LockTimeout = "5m",
    ghactions_runner_token: RunnerToken = None,
    ghactions_runner_token_file: RunnerTokenFile = None,
    ghactions_runner_repo: RunnerRepo = None,
    ghactions_runner_org: RunnerOrg = None,
    ghactions_runner_labels: RunnerLabels = None,
    ghactions_runner_ephemeral: RunnerEphemeral = False,
    ghactions_app_id: AppId = None,
    ghactions_app_installation_id: AppInstallationId = None,
    ghactions_app_private_key: AppPrivateKey = None,
    dry_run: Annotated[
        bool,
        option(
            "--dry-run",
            "Show the choice, its hourly price and the resources; create nothing.",
        ),
    ] = False,
    output: Output = OutputFormat.text,
    sandbox: Sandbox = False,
    debug: Debug = False,
) -> None:
    """Create a host and wait until it answers over SSH; write its connection files.

    Running it again for the same project keeps the same place and machine: the spot
    choice is read back from spotOption-<project> and the host stack is updated in
    place. A failed create keeps what it made in state for `mapt aws host destroy`.
    Every input and prerequisite (Pulumi CLI, connection folder, AWS credentials) is
    checked before any AWS call or lock. --dry-run needs no Pulumi CLI and writes nothing.
    --sandbox makes it on a local AWS-compatible endpoint instead (docs/sandbox.md).
    """
    import boto3

    from mapt.allocation import AllocationArgs, check_credentials, resolve_architecture
    from mapt.cli._app import set_debug
    from mapt.cli._host_flow import HostChecks, create_host, dry_run_host
    from mapt.cli._services import services
    from mapt.core import parse_duration, parse_tags
    from mapt.stacks import DryRunEngine, resolve_backend, secrets_setup, validate_secrets_provider
    from mapt.targets import check_connection_folder
    from mapt.targets.aws import HostRequest

    set_debug(ctx, debug)
    compute = compute_request(ctx)
    context = _context(
        project_name, backed_url, requested_region(region), tags=parse_tags(tags or ""), debug=debug
    )
    expires_at = None
    if timeout is not None:
        lifetime = parse_duration(timeout, flag="--timeout", maximum=MAX_LIFETIME)
        expires_at = datetime.now(timezone.utc).replace(microsecond=0) + lifetime
    wait_for_lock = parse_duration(lock_timeout, flag="--lock-timeout").total_seconds()
    if spot_max_attempts < 1:
        raise InputError(f"--spot-max-attempts {spot_max_attempts} must be at least 1")
    if not airgap:
        _refuse_without(ctx, ("service_endpoints",), "--airgap")
    request = HostRequest(
        os=os_name,  # type: ignore[arg-type]  # validated by HostRequest
        version=version,
        arch=compute.arch or "x86_64",  # the named types' may replace it below
        disk_size=disk_size,
        airgap=airgap,
        service_endpoints=comma_list("--service-endpoints", service_endpoints),
        ami_name=ami_name,
        ami_owner=ami_owner,
        ami_username=ami_username,
        rh_subscription_username=rh_subscription_username,
        rh_subscription_password=secret_value(ctx, "--rh-subscription-password"),
        expires_at=expires_at,
    )
    spot_choice = (
        spot_args(
            tolerance=spot_eviction_tolerance,
            increase_rate=spot_increase_rate,
            excluded_regions=spot_excluded_regions,
        )
        if spot
        else None
    )
    if not spot:
        _refuse_without(ctx, _SPOT_TUNING, "--spot")
    # Checked on a dry run too: it fails where the real run would.
    conn_dir = None if conn_details_output is None else check_connection_folder(conn_details_output)
    scope = runner_scope(ghactions_runner_repo, ghactions_runner_org)
    if scope is None:
        _refuse_without(
            ctx,
            _RUNNER_SETTINGS,
            "--ghactions-runner-repo OWNER/REPO or --ghactions-runner-org ORG",
            secret="ghactions_runner_token",
        )
    provider = validate_secrets_provider(secrets_provider)
    backend = resolve_backend(context.backend_url)
    if sandbox:
        _refuse_in_sandbox(ctx)

    # Prerequisites, before any AWS call or lock: what a real run changes state with,
    # then the AWS credentials every run reads the market with.
    service = services(
        ctx, sandbox=sandbox, region=context.resolved_region(), backend_url=context.backend_url
    )
    if not dry_run:
        service.check_engine()
        if backend.kind == "s3":
            secrets_setup(backend, provider)  # no passphrase and no KMS key: fail now
    session = boto3.Session()
    check_credentials(session)
    engine = service.engine(provider, debug)
    if scope is not None:
        # Last of the checks: it asks GitHub for a token, once everything else is valid.
        request = replace(
            request,
            runner=runner_spec(
                project=context.project_name,
                scope=scope,
                token=secret_value(ctx, "--ghactions-runner-token"),
                labels=ghactions_runner_labels,
                ephemeral=ghactions_runner_ephemeral,
                app_id=ghactions_app_id,
                app_installation_id=ghactions_app_installation_id,
                app_private_key=ghactions_app_private_key,
            ),
        )
    # Types named without --arch run on their own architecture; the image follows it.
    compute = resolve_architecture(compute, region=context.resolved_region(), session=session)
    if compute.arch is not None and compute.arch != request.arch:
        request = replace(request, arch=compute.arch)
    image = request.image
    args = AllocationArgs(
        compute_request=compute,
        ami_product_description=_PRODUCT_DESCRIPTIONS[request.os],
        ami_name=image.name,
        ami_owner=image.owner,
        ami_arch=image.architecture,
        spot=spot_choice,
        session=session,
    )
    if dry_run:
        outcome = dry_run_host(
            context, args, request, engine=DryRunEngine(reader=engine), session=session
        )
    else:
        outcome = create_host(
            context,
            args,
            request,
            engine=engine,
            conn_dir=conn_dir,
            checks=HostChecks(
                launch=service.launch, readiness=service.readiness, setup=service.setup
            ),
            lock_timeout=wait_for_lock,
            max_attempts=spot_max_attempts,
            fallback_on_demand=spot_fallback_on_demand,
        )
        _write_github_output(outcome, conn_dir)
    _print_create(outcome, output)


@host_app.command("destroy")
def destroy(
    ctx: typer.Context,
    project_name: ProjectName,
    backed_url: BackedUrl = None,
    secrets_provider: SecretsProvider = None,
    force_destroy: Annotated[
        bool,
        option(
            "--force-destroy",
            "First remove locks left by runs that died (only when no other run is alive).",
        ),
    ] = False,
    keep_state: Annotated[
        bool, option("--keep-state", "Keep the project's state history in the backend.")
    ] = False,
    lock_timeout: LockTimeout = "5m",
    ghactions_runner_repo: RunnerRepo = None,
    ghactions_runner_org: RunnerOrg = None,
    ghactions_app_id: AppId = None,
    ghactions_app_installation_id: AppInstallationId = None,
    ghactions_app_private_key: AppPrivateKey = None,
    output: Output = OutputFormat.text,
    sandbox: Sandbox = False,
    debug: Debug = False,
) -> None:
    """Destroy the host, then its spot choice, then the project's state.

    Destroying twice, or a project that never existed, succeeds and says there was
    nothing to destroy; that is found by reading the state, so it needs no Pulumi CLI
    and writes nothing.
    """
    from mapt.cli._app import set_debug
    from mapt.cli._host_flow import destroy_host
    from mapt.cli._services import services
    from mapt.core import parse_duration
    from mapt.stacks import validate_secrets_provider

    set_debug(ctx, debug)
    context = _context(project_name, backed_url, None, tags={}, debug=debug)
    provider = validate_secrets_provider(secrets_provider)
    wait = parse_duration(lock_timeout, flag="--lock-timeout").total_seconds()
    scope = runner_scope(ghactions_runner_repo, ghactions_runner_org)
    service = services(ctx, sandbox=sandbox, backend_url=context.backend_url)

    def deregister(registered: RegisteredRunner | None) -> str | None:
        return deregister_runner(
            project=context.project_name,
            registered=registered,
            requested=scope,
            app_id=ghactions_app_id,
            app_installation_id=ghactions_app_installation_id,
            app_private_key=ghactions_app_private_key,
        )

    outcome = destroy_host(
        context,
        engine=service.engine(provider, debug),
        force=force_destroy,
        keep_state=keep_state,
        lock_timeout=wait,
        prerequisites=service.check_engine,
        deregister=deregister,
    )
    _print_destroy(context, outcome, output)


@host_app.command("list")
def list_command(
    ctx: typer.Context,
    backed_url: BackedUrl = None,
    output: Output = OutputFormat.text,
    debug: Debug = False,
) -> None:
    """List the projects in a state backend: where each host runs, on what, since when.

    Reads state only: no AWS call, no change, no passphrase needed. A project
    whose state cannot be read is listed as unreadable, with the file and why.
    """
    from mapt.cli._app import set_debug
    from mapt.cli._host_flow import list_hosts
    from mapt.cli._services import services
    from mapt.stacks import resolve_backend

    set_debug(ctx, debug)
    resolve_backend(backed_url)  # a bad URL is refused before anything is read
    engine: Engine = services(ctx).engine(None, debug)
    hosts = list_hosts(engine, backed_url)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"hosts": [h.to_dict() for h in hosts]}, indent=2))
    else:
        _print_hosts(hosts, backed_url)


# -- input ------------------------------------------------------------------------------


def _context(
    project: str, backed_url: str | None, region: str | None, *, tags: dict[str, str], debug: bool
) -> RunContext:
    from mapt.stacks import resolve_backend

    resolve_backend(backed_url)  # a bad URL is refused before anything is created
    return RunContext(
        project_name=project, backend_url=backed_url, region=region, tags=tags, debug=debug
    )


def _refuse_without(
    ctx: typer.Context, names: tuple[str, ...], needed: str, *, secret: str | None = None
) -> None:
    """Flags that mean something only with ``needed`` are refused without it, not ignored.

    The value of the ``secret`` parameter is never echoed.
    """
    for name in names:
        if given(ctx, name):
            flag = flag_name(name)
            named = flag if name == secret else f"{flag} {shown(ctx.params[name])}"
            raise InputError(f"{named} applies only with {needed}")


# Flags whose secrets reach a host over SSH, which the sandbox never opens (and which
# would register a runner with GitHub or a subscription with Red Hat for no machine).
_DELIVERED_SETTINGS = (
    "rh_subscription_username",
    "rh_subscription_password",
    "rh_subscription_password_file",
    "ghactions_runner_repo",
    "ghactions_runner_org",
    *_RUNNER_SETTINGS,
)


def _refuse_in_sandbox(ctx: typer.Context) -> None:
    """What the sandbox cannot deliver is refused before anything is called, not ignored."""
    for name in _DELIVERED_SETTINGS:
        if given(ctx, name):
            raise InputError(
                f"{flag_name(name)} cannot be used with --sandbox: nothing logs in to a "
                "sandbox host to deliver it"
            )


# -- output -----------------------------------------------------------------------------


def _create_document(outcome: CreateOutcome) -> dict[str, Any]:
    from mapt.targets.aws import SECRET_OUTPUTS

    chosen = outcome.allocation
    document: dict[str, Any] = {
        "dry_run": outcome.dry_run,
        "allocation": chosen.to_dict(),
        "hourly_price": outcome.hourly_price,
        "outputs": outcome.public_outputs(SECRET_OUTPUTS),
        "files": [str(path) for path in outcome.files],
    }
    if outcome.runner_name is not None:
        document["runner_name"] = outcome.runner_name
    if outcome.price_unknown is not None:
        document["hourly_price_unknown"] = outcome.price_unknown
    if outcome.dry_run:
        document["images"] = [dict(image) for image in outcome.images]
        document["resources"] = [
            {"op": step.op, "type": step.type, "name": step.name} for step in outcome.planned
        ]
    return document


def _print_create(outcome: CreateOutcome, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps(_create_document(outcome), indent=2))
        return
    chosen = outcome.allocation
    lines = [
        f"region:            {chosen.region}",
        f"availability zone: {chosen.availability_zone}",
        f"instance types:    {', '.join(chosen.instance_types)}",
    ]
    if chosen.is_spot:
        lines.append(f"spot price:        {chosen.spot_price:.4f} USD/h")
        lines.append(f"max price:         {(chosen.max_price or 0):.4f} USD/h")
    else:
        lines.append("capacity:          on-demand")
    if outcome.runner_name is not None:
        lines.append(f"runner:            {outcome.runner_name}")
    if outcome.dry_run:
        header = "Dry run: nothing was created, no state or connection file was written."
        price = outcome.hourly_price
        cost = (
            f"unknown: {outcome.price_unknown}" if price is None else f"{price:.4f} USD/h"
        ) + " for the instance (load balancer, IP address and NAT gateway are charged on top)"
        lines.append(f"estimated cost:    {cost}")
        lines += [f"image:             {i['id']} ({i['name']})" for i in outcome.images]
        typer.echo("\n".join([header, *lines]))
        _print_resources(outcome)
        return
    lines += [
        f"host:              {outcome.outputs.get('host')}",
        f"username:          {outcome.outputs.get('username')}",
    ]
    if outcome.files:
        lines.append(f"connection files:  {', '.join(str(p) for p in outcome.files)}")
    typer.echo("\n".join(["Host ready.", *lines]))


def _print_resources(outcome: CreateOutcome) -> None:
    from rich.table import Table

    table = Table(title=f"{len(outcome.planned)} resources would be created")
    for column in ("type", "name"):
        table.add_column(column)
    for step in outcome.planned:
        table.add_row(step.type, step.name)
    console().print(table)


def _write_github_output(outcome: CreateOutcome, conn_dir: Path | None) -> None:
    """Append the host's public facts to ``$GITHUB_OUTPUT`` for later workflow steps."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    chosen = outcome.allocation
    values = {
        "host": outcome.outputs.get("host"),
        "username": outcome.outputs.get("username"),
        "region": chosen.region,
        "availability-zone": chosen.availability_zone,
        "instance-type": chosen.instance_types[0],
        "instance-types": ",".join(chosen.instance_types),
        "spot-price": "" if chosen.spot_price is None else f"{chosen.spot_price:.6f}",
        "conn-details": "" if conn_dir is None else str(conn_dir.absolute()),
    }
    if outcome.runner_name is not None:
        values["runner-name"] = outcome.runner_name
    lines = []
    for name, value in values.items():
        text = "" if value is None else str(value)
        if "\n" in text or "\r" in text:
            raise InputError(f"output {name!r} holds a line break; GITHUB_OUTPUT cannot take it")
        lines.append(f"{name}={text}\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(lines)


def _print_destroy(context: RunContext, outcome: DestroyOutcome, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        document = {
            "project": context.project_name,
            "destroyed": list(outcome.destroyed),
            "nothing_to_destroy": outcome.nothing_to_destroy,
            "unlocked": list(outcome.unlocked),
            "purged_state_files": len(outcome.purged),
        }
        if outcome.runner is not None:
            document["runner"] = outcome.runner
        typer.echo(json.dumps(document, indent=2))
        return
    where = context.backend_url or "the local state"
    if outcome.runner is not None:
        typer.echo(outcome.runner[:1].upper() + outcome.runner[1:] + ".")
    if outcome.nothing_to_destroy:
        project = context.project_name
        typer.echo(f"Nothing to destroy: project {project!r} has no stacks in {where}.")
        return
    typer.echo(f"Destroyed {', '.join(outcome.destroyed)} (project {context.project_name!r}).")


def _print_hosts(hosts: list[HostSummary], backed_url: str | None) -> None:
    from rich.table import Table

    if not hosts:
        typer.echo(f"No projects in {backed_url or 'the local state'}.")
        return
    now = datetime.now(timezone.utc)
    table = Table()
    columns = ("project", "region", "zone", "type(s)", "capacity", "host", "secrets", "updated")
    for column in (*columns, "locked"):
        table.add_column(column)
    for host in hosts:
        capacity = "-" if host.spot is None else ("spot" if host.spot else "on-demand")
        table.add_row(
            host.project or "(unknown)",
            host.region or "-",
            host.availability_zone or "-",
            ", ".join(host.instance_types) or "-",
            capacity,
            host.host or "-",
            host.secrets_state,
            "unreadable" if host.unreadable else _age(now, host.updated_at),
            "yes" if host.locked else "",
        )
    out = console()
    out.print(table)
    for host in hosts:
        for location, reason in host.unreadable:
            # Plain text: a path in brackets must not be taken for rich markup.
            out.print(
                f"Unreadable state of project {host.project or '(unknown)'}: {location}: {reason}",
                markup=False,
                highlight=False,
            )


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    if hours >= 48:
        return f"{hours // 24}d ago"
    return f"{hours}h{rest // 60:02d}m ago" if hours else f"{rest // 60}m ago"
