"""``mapt aws host create|destroy|list|refresh-ip|costs``: a machine for a CI job, its
removal, a new address for it, and what it cost.

Flags keep the Go mapt's names. Each command parses its flags, hands them to
``mapt.hosts`` (``create_request`` checks every value before anything is created, so
bad input exits with code 2 and one line naming it; ``AwsHostTarget`` runs the
lifecycle) and prints the record it answers. No domain decision is taken here.
"""

# Annotations stay objects here (no `from __future__ import annotations`): Typer reads
# every command's annotations at each start, and strings it would evaluate twice.

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mapt.cli._console import command_group, console
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
)
from mapt.cli._options import (
    Arch,
    BackedUrl,
    ComputeFamilies,
    ComputeSizes,
    CostsEnd,
    CostsStart,
    Cpus,
    Debug,
    DnsZone,
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
    ServerUrl,
    Tags,
    Token,
    TokenFile,
    Tolerance,
    Wait,
    flag_name,
    given,
    given_fields,
    option,
    secret_file_option,
    secret_option,
    secret_value,
    whole_number,
)
from mapt.cli._remote import REMOTE_PARAMETERS, server_client
from mapt.core import InputError
from mapt.hosts import DEFAULT_LOCK_TIMEOUT, DEFAULT_SPOT_ATTEMPTS

if TYPE_CHECKING:
    from datetime import date

    from mapt.costs import CostReport
    from mapt.hosts import DestroyRecord, HostInterruptions, HostRecord, HostStatus

host_app = command_group(
    "A host (RHEL, Fedora or Windows) for a CI job: create, destroy, list, refresh-ip, costs."
)
ConnDetailsOutput = Annotated[
    str | None,
    option(
        "--conn-details-output",
        "Folder for the connection files (host, username, id_rsa, ...), mode 0600.",
    ),
]

# Parameters of the command that are not fields of the request: how to run and print.
_NOT_FIELDS = ("dry_run", "output", "sandbox", *REMOTE_PARAMETERS)
# Secret flags: read by secret_value from the flag, its -file form or their variables.
_SECRET_FLAGS = {
    "rh_subscription_password": "--rh-subscription-password",
    "ghactions_runner_token": "--ghactions-runner-token",
}


@host_app.command("create")
def create(
    ctx: typer.Context,
    project_name: ProjectName,
    os_name: Annotated[str, option("--os", "Operating system: rhel, fedora or windows.")],
    backed_url: BackedUrl = None,
    secrets_provider: SecretsProvider = None,
    region: Region = None,
    availability_zone: Annotated[
        str | None,
        option("--availability-zone", "Run in this zone of the region (e.g. us-east-1b)."),
    ] = None,
    conn_details_output: ConnDetailsOutput = None,
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
    dns_zone: DnsZone = None,
    spot_load_balancer: Annotated[
        bool,
        option(
            "--spot-load-balancer",
            "With --dns-zone: keep the spot host behind a network load balancer with a "
            "fixed address (about 20 USD a month more).",
        ),
    ] = False,
    lock_timeout: LockTimeout = DEFAULT_LOCK_TIMEOUT,
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
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    wait: Wait = True,
    debug: Debug = False,
) -> None:
    """Create a host and wait until it answers over SSH; write its connection files.

    Running it again for the same project keeps the same place and machine: the spot
    choice is read back from spotOption-<project> and the host stack is updated in
    place. A failed create keeps what it made in state for `mapt aws host destroy`.
    Every input and prerequisite (Pulumi CLI, connection folder, AWS credentials) is
    checked before any AWS call or lock. --dry-run needs no Pulumi CLI and writes nothing.
    --sandbox makes it on a local AWS-compatible endpoint instead (docs/sandbox.md).
    With --server, the server creates it and the connection files are written here.
    """
    from mapt.cli._app import set_debug
    from mapt.cli._github_output import check_github_output
    from mapt.cli._services import services
    from mapt.hosts import AwsHostTarget, create_request, destroy_hint

    set_debug(ctx, debug)
    fields, name = _request_fields(ctx)
    client = server_client(ctx)
    if client is not None:
        from mapt.cli._remote import remote_create

        with client:
            remote_create(ctx, client, fields, output)
        return
    request = create_request(fields, name=name)
    if sandbox:
        _refuse_in_sandbox(ctx)
    if not dry_run:
        check_github_output()
    context = request.context
    target = AwsHostTarget(
        services(
            ctx, sandbox=sandbox, region=context.resolved_region(), backend_url=context.backend_url
        )
    )
    if dry_run:
        record = target.dry_run(request)
    else:
        record = target.create(request)
        _write_github_output(
            record,
            request.conn_dir,
            undo=destroy_hint(context, None, request.secrets_provider),
        )
    _print_create(record, output)


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
    lock_timeout: LockTimeout = DEFAULT_LOCK_TIMEOUT,
    ghactions_runner_repo: RunnerRepo = None,
    ghactions_runner_org: RunnerOrg = None,
    ghactions_app_id: AppId = None,
    ghactions_app_installation_id: AppInstallationId = None,
    ghactions_app_private_key: AppPrivateKey = None,
    output: Output = OutputFormat.text,
    sandbox: Sandbox = False,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    wait: Wait = True,
    debug: Debug = False,
) -> None:
    """Destroy the host, then its spot choice, then the project's state.

    Destroying twice, or a project that never existed, succeeds and says there was
    nothing to destroy; that is found by reading the state, so it needs no Pulumi CLI
    and writes nothing. With --server, the server destroys the host it manages.
    """
    from mapt.cli._app import set_debug
    from mapt.cli._services import services
    from mapt.hosts import AwsHostTarget, destroy_request

    set_debug(ctx, debug)
    client = server_client(ctx)
    if client is not None:
        from mapt.cli._remote import remote_destroy

        with client:
            remote_destroy(ctx, client, output)
        return
    request = destroy_request(_request_fields(ctx)[0])
    service = services(ctx, sandbox=sandbox, backend_url=request.context.backend_url)
    record = AwsHostTarget(service).destroy(request)
    _print_destroy(request.context.backend_url, record, output)


@host_app.command("refresh-ip")
def refresh_ip(
    ctx: typer.Context,
    project_name: ProjectName,
    conn_details_output: ConnDetailsOutput = None,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    wait: Wait = True,
    debug: Debug = False,
) -> None:
    """Give the host a new public address: a new Elastic IP, the old one released.

    It runs on the server that manages the host (--server): the host's program runs
    again with its Elastic IP replaced, and the server keeps the create's flags that
    program is made from. Air-gapped hosts (no public address) and spot hosts (their
    address is their load balancer's) are refused. --conn-details-output writes the
    connection files again, with the new address.
    """
    from mapt.cli._app import set_debug

    set_debug(ctx, debug)
    client = server_client(ctx)
    if client is None:
        raise InputError(
            "refresh-ip runs on the server that manages the host: give --server URL "
            "(or MAPT_SERVER)",
            hint="Locally, the host's program would need every flag of its create again.",
        )
    from mapt.cli._remote import remote_refresh_ip

    with client:
        remote_refresh_ip(ctx, client, output)


@host_app.command("list")
def list_command(
    ctx: typer.Context,
    backed_url: BackedUrl = None,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """List the projects in a state backend: where each host runs, on what, since when.

    Reads state only: no AWS call, no change, no passphrase needed. A project
    whose state cannot be read is listed as unreadable, with the file and why.
    With --server, the hosts that server manages.
    """
    from mapt.cli._app import set_debug
    from mapt.cli._services import services
    from mapt.hosts import AwsHostTarget

    set_debug(ctx, debug)
    client = server_client(ctx)
    if client is not None:
        from mapt.cli._remote import remote_list

        with client:
            remote_list(ctx, client, output)
        return
    hosts = AwsHostTarget(services(ctx)).list(backed_url, debug=debug)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"hosts": [h.to_dict() for h in hosts]}, indent=2))
    else:
        _print_hosts(hosts, backed_url)


@host_app.command("status")
def status_command(
    ctx: typer.Context,
    project_name: ProjectName,
    backed_url: BackedUrl = None,
    output: Output = OutputFormat.text,
    debug: Debug = False,
) -> None:
    """Where the host runs, and the spot interruptions it went through.

    Where it runs comes from state; for a spot host, its Auto Scaling group's activity
    history (AWS keeps six weeks of it) says which instances AWS took out of service
    for a spot interruption notice or a rebalance recommendation, and which instance
    replaced each. Needs your AWS credentials, not a server. An on-demand host is not
    interrupted.
    """
    from mapt.allocation import check_credentials
    from mapt.cli._app import set_debug
    from mapt.cli._services import services
    from mapt.core import aws_session
    from mapt.hosts import AwsHostTarget, host_interruptions

    set_debug(ctx, debug)
    status = AwsHostTarget(services(ctx)).status(project_name, backed_url, debug=debug)
    session = aws_session()
    if status.spot is not False:
        check_credentials(session)
    report = host_interruptions(status, session)
    if output is OutputFormat.json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_interruptions(report)


def _print_interruptions(report: "HostInterruptions") -> None:
    status, out = report.status, console()
    where = f"{status.region or 'unknown region'} ({status.availability_zone or 'unknown zone'})"
    kind = {True: "spot", False: "on-demand", None: "unknown"}[status.spot]
    out.print(f"{status.project}: {kind} host in {where}, address {status.host or 'none'}")
    found = report.interruptions
    if found is None:
        out.print("interruptions: none apply (an on-demand host is not interrupted)")
        return
    if not found:
        out.print(f"interruptions: none in the activity history of group {report.group}")
        return
    out.print(f"interruptions: {len(found)} (group {report.group})")
    for seen in found:
        why = {"spot-interruption": "spot interruption notice",
               "rebalance-recommendation": "rebalance recommendation"}[seen.kind]  # fmt: skip
        replaced = (
            "no replacement launched"
            if seen.replacement is None or seen.replaced_at is None
            else f"replaced by {seen.replacement} at {_when(seen.replaced_at)}"
        )
        out.print(f"  {_when(seen.at)}  {seen.instance}  {why}: {replaced}")


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@host_app.command("costs")
def costs_command(
    ctx: typer.Context,
    project_name: ProjectName,
    backed_url: BackedUrl = None,
    start: CostsStart = None,
    end: CostsEnd = None,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """What the host's instance cost on spot against on demand, and its network at list prices.

    The spot figure is priced from the AZ's spot price history (every price change for
    the time it was in force), the on-demand one from the Pricing API. Without
    --server, a host made by the CLI is priced from its state (its placement and
    creation time) with your AWS credentials; with --server, from the server's history
    of the host (every replacement counted).
    """
    from mapt.cli._app import set_debug
    from mapt.costs import parse_day

    set_debug(ctx, debug)
    days = (
        None if start is None else parse_day(start, "--start"),
        None if end is None else parse_day(end, "--end"),
    )
    client = server_client(ctx)
    if client is not None:
        with client:
            document = client.hosts.costs(project_name, start=days[0], end=days[1], detail=True)
    else:
        document = _local_costs(ctx, project_name, backed_url, days, debug).as_detail()
    if output is OutputFormat.json:
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_costs(project_name, document)


def _local_costs(
    ctx: typer.Context,
    project: str,
    backed_url: str | None,
    days: "tuple[date | None, date | None]",
    debug: bool,
) -> "CostReport":
    from mapt.allocation import check_credentials
    from mapt.cli._services import services
    from mapt.core import aws_session
    from mapt.costs import AwsPrices, window
    from mapt.hosts import host_costs
    from mapt.stacks import resolve_backend

    now = datetime.now(timezone.utc)
    window(*days, now)  # end before start is refused before anything is read
    resolve_backend(backed_url)
    engine = services(ctx).engine(None, debug)
    session = aws_session()
    check_credentials(session)
    prices = AwsPrices(session)
    return host_costs(engine, backed_url, project, prices, start=days[0], end=days[1], now=now)


def _print_costs(project: str, document: dict[str, Any]) -> None:
    costs, hours = document["costs"], document["running"]["value"]
    out = console()
    out.print(
        f"{project}: ${costs['actual']:.4f} on spot against ${costs['potential']:.4f} on "
        f"demand over {hours:g} hours: {document['savings']['value']:g}% saved"
    )
    for item in document.get("list_priced", []):
        price = item["list_price"]
        cost = "unknown" if item["cost"] is None else f"${item['cost']:.4f}"
        hours_held = "unknown hours" if item["hours"] is None else f"{item['hours']:g} hours"
        out.print(
            f"  {item['resource']}: {cost} at list price (${price['usd_per_hour']}/hour "
            f"in {price['region']}, {hours_held}; {price['note']})"
        )


# -- input ------------------------------------------------------------------------------


def _request_fields(ctx: typer.Context) -> tuple[dict[str, Any], Callable[[str], str]]:
    """The command's flags as ``mapt.hosts`` request fields, and how messages name them.

    Only flags given (on the command line or by their variables) are fields, so the
    library tells given from default. A secret is a function reading it (from the
    flag, its -file form or their variables) when the checks reach it, and is named
    by the form it came in.
    """
    fields = given_fields(ctx)
    if "os_name" in fields:
        fields["os"] = fields.pop("os_name")
    for name in _NOT_FIELDS:
        fields.pop(name, None)
    file_forms: set[str] = set()
    for name, flag in _SECRET_FLAGS.items():
        if name not in ctx.params:
            continue
        file_name = f"{name}_file"
        fields.pop(name, None)
        if fields.pop(file_name, None) is not None:
            file_forms.add(name)
        if given(ctx, name) or given(ctx, file_name):
            fields[name] = lambda flag=flag: secret_value(ctx, flag)

    def flag_of(name: str) -> str:
        return f"{flag_name(name)}-file" if name in file_forms else flag_name(name)

    return fields, flag_of


# Flags whose secrets reach a host over SSH, which the sandbox never opens (and which
# would register a runner with GitHub or a subscription with Red Hat for no machine).
_DELIVERED_SETTINGS = (
    "rh_subscription_username",
    "rh_subscription_password",
    "rh_subscription_password_file",
    "ghactions_runner_repo",
    "ghactions_runner_org",
    "ghactions_runner_token",
    "ghactions_runner_token_file",
    "ghactions_runner_labels",
    "ghactions_runner_ephemeral",
    "ghactions_app_id",
    "ghactions_app_installation_id",
    "ghactions_app_private_key",
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


def _print_create(outcome: "HostRecord", output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps(outcome.to_dict(), indent=2))
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
    name = outcome.outputs.get("dns_name")
    lines.append(f"host:              {name or outcome.outputs.get('host')}")
    if name is not None:
        lines.append(f"address:           {outcome.outputs.get('host')}")
    lines.append(f"username:          {outcome.outputs.get('username')}")
    if outcome.files:
        lines.append(f"connection files:  {', '.join(str(p) for p in outcome.files)}")
    typer.echo("\n".join(["Host ready.", *lines]))


def _print_resources(outcome: "HostRecord") -> None:
    from rich.table import Table

    table = Table(title=f"{len(outcome.planned)} resources would be created")
    for column in ("type", "name"):
        table.add_column(column)
    for step in outcome.planned:
        table.add_row(step.type, step.name)
    console().print(table)


def _write_github_output(outcome: "HostRecord", conn_dir: Path | None, *, undo: str) -> None:
    """Append the host's public facts to ``$GITHUB_OUTPUT`` for later workflow steps;
    ``undo`` (how to destroy the host, which is made) is the hint of a failure."""
    from mapt.cli._github_output import write_github_output

    chosen = outcome.allocation
    values = {
        # As the `host` connection file: the name when there is one, then its address.
        "host": outcome.outputs.get("dns_name") or outcome.outputs.get("host"),
        "address": outcome.outputs.get("host"),
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
    write_github_output(
        {name: None if value is None else str(value) for name, value in values.items()},
        undo=undo,
    )


def _print_destroy(backend_url: str | None, outcome: "DestroyRecord", output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps(outcome.to_dict(), indent=2))
        return
    where = backend_url or "the local state"
    if outcome.runner is not None:
        typer.echo(outcome.runner[:1].upper() + outcome.runner[1:] + ".")
    if outcome.nothing_to_destroy:
        project = outcome.project
        typer.echo(f"Nothing to destroy: project {project!r} has no stacks in {where}.")
        return
    typer.echo(f"Destroyed {', '.join(outcome.destroyed)} (project {outcome.project!r}).")


def _print_hosts(hosts: "list[HostStatus]", backed_url: str | None) -> None:
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
            (f"{host.dns_name} ({host.host})" if host.dns_name else host.host) or "-",
            host.secrets_state,
            "unreadable" if host.unreadable else _age(now, host.updated_at),
            "yes" if host.locked else "",
        )
    out = console()
    out.print(table)
    for host in hosts:
        for location, reason in host.unreadable:
            out.print(
                f"Unreadable state of project {host.project or '(unknown)'}: {location}: {reason}"
            )


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    if hours >= 48:
        return f"{hours // 24}d ago"
    return f"{hours}h{rest // 60:02d}m ago" if hours else f"{rest // 60}m ago"
