"""``mapt pool``: pools of warm hosts on a ``mapt serve`` (``--server``), and leases.

``create|list|show|scale|delete`` manage the pool records; ``add|remove|refresh-ip``
are the FaaSpot verbs (executions: by default the command waits for them, ``--no-wait``
prints the execution's id); ``lease`` takes a warm member and writes the same
connection files ``mapt aws host create --conn-details-output`` writes, so a CI job
gets a machine in seconds; ``release`` returns it. Every command needs ``--server``
and a token (``MAPT_TOKEN`` or ``--token-file``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mapt.cli._console import command_group
from mapt.cli._options import (
    CostsEnd,
    CostsStart,
    Debug,
    Output,
    OutputFormat,
    ServerUrl,
    Token,
    TokenFile,
    Wait,
    number,
    option,
    whole_number,
)
from mapt.core import InputError

if TYPE_CHECKING:
    from mapt.client import Client, Execution

pool_app = command_group(
    "Pools of warm hosts on a `mapt serve` (--server), and leases for CI jobs."
)

PoolName = Annotated[str, typer.Argument(help="The pool's name.", show_default=False)]
Count = Annotated[int | None, option("--count", "How many members.", parser=whole_number)]
# The longest a server waits for an idle member (its lease body's bound,
# mapt.service's MAX_WAIT_SECONDS): checked here too, since the client's own timeout
# for the request is this wait plus its usual one, which must stay a finite number.
MAX_LEASE_WAIT_SECONDS = 3600.0


def _client(ctx: typer.Context, debug: bool) -> Client:
    from mapt.cli._app import set_debug
    from mapt.cli._remote import required_server_client

    set_debug(ctx, debug)
    return required_server_client(ctx, "pools live on a server")


def _template(path: str) -> dict[str, Any]:
    """The host template: a JSON object of the fields of ``POST /v1/hosts`` (no name)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"--host-file {path!r} cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise InputError(f"--host-file {path!r} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise InputError(f"--host-file {path!r} must hold a JSON object of host fields")
    return document


def _print_pool(document: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps(document, indent=2))
        return
    pool = document["pool"]
    capacity = pool["capacity"]
    members = pool.get("members") or {}
    states = ", ".join(f"{n} {s}" for s, n in sorted((members.get("by_state") or {}).items()))
    typer.echo(
        f"{pool['name']}: {pool['state']}, target {capacity['target']} "
        f"(min {capacity['minimum']}, max {capacity['maximum']}); "
        f"members: {states or 'none'}; leased {members.get('leased', 0)}, "
        f"idle {members.get('idle', 0)}"
    )
    for host in document.get("hosts", ()):
        lease = host.get("lease")
        held = f" leased by {lease['holder']} until {lease['expires_at']}" if lease else ""
        typer.echo(f"  {host['name']}  {host['state']}  {host.get('address') or '-'}{held}")


def _finished(
    ctx: typer.Context, client: Client, execution: Execution, output: OutputFormat
) -> None:
    from mapt.cli._remote import followed, submitted

    if not ctx.params["wait"]:
        submitted(execution, output)
        return
    execution = followed(client, execution).raise_for_error()
    if output is OutputFormat.json:
        typer.echo(json.dumps({"execution": execution.to_dict()}, indent=2))
    else:
        typer.echo(f"{execution.name} {execution.target}: {execution.status.value}")


@pool_app.command("create")
def create(
    ctx: typer.Context,
    name: PoolName,
    target: Annotated[int, option("--target", "Members to keep.", parser=whole_number)],
    host_file: Annotated[
        str,
        option("--host-file", "JSON object of the host fields (those of POST /v1/hosts)."),
    ],
    minimum: Annotated[int, option("--minimum", "Fewest members.", parser=whole_number)] = 0,
    maximum: Annotated[
        int | None, option("--maximum", "Most members (default: the target).", parser=whole_number)
    ] = None,
    recycle: Annotated[
        str, option("--recycle", "A returned member: replace (fresh one) or keep.")
    ] = "replace",
    max_lifetime: Annotated[
        str | None, option("--max-lifetime", "Replace idle members older than this (12h).")
    ] = None,
    fallback_on_demand: Annotated[
        bool, option("--fallback-on-demand", "On-demand when spot has no capacity.")
    ] = False,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Create a pool; the server's loop launches its members."""
    template = _template(host_file)
    strategy = {
        "recycle": recycle,
        "max_lifetime": max_lifetime,
        "fallback_on_demand": fallback_on_demand,
    }
    with _client(ctx, debug) as client:
        client.pools.create(
            name, target=target, minimum=minimum, maximum=maximum, host=template,
            strategy=strategy,
        )  # fmt: skip
        _print_pool(client.pools.get(name), output)


@pool_app.command("list")
def list_command(
    ctx: typer.Context,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """List the pools with their members counted."""
    with _client(ctx, debug) as client:
        found = client.pools.list()
    if output is OutputFormat.json:
        typer.echo(json.dumps({"pools": found}, indent=2))
        return
    if not found:
        typer.echo("No pools.")
    for pool in found:
        _print_pool({"pool": pool}, output)


@pool_app.command("show")
def show(
    ctx: typer.Context,
    name: PoolName,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Show a pool and its members (state, address, lease)."""
    with _client(ctx, debug) as client:
        _print_pool(client.pools.get(name), output)


@pool_app.command("scale")
def scale(
    ctx: typer.Context,
    name: PoolName,
    target: Annotated[
        int | None, option("--target", "Members to keep.", parser=whole_number)
    ] = None,
    minimum: Annotated[int | None, option("--minimum", "Fewest.", parser=whole_number)] = None,
    maximum: Annotated[int | None, option("--maximum", "Most.", parser=whole_number)] = None,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Change the capacity; the loop launches or removes idle members to match."""
    capacity = {
        key: value
        for key, value in (("target", target), ("minimum", minimum), ("maximum", maximum))
        if value is not None
    }
    if not capacity:
        raise InputError("scale needs --target, --minimum or --maximum")
    with _client(ctx, debug) as client:
        client.pools.update(name, capacity=capacity)
        _print_pool(client.pools.get(name), output)


@pool_app.command("add")
def add(
    ctx: typer.Context,
    name: PoolName,
    count: Count = None,
    wait: Wait = True,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Add members (one, or --count); the target rises, never above maximum."""
    with _client(ctx, debug) as client:
        execution = client.pools.add(name, 1 if count is None else count, wait=False)
        _finished(ctx, client, execution, output)


@pool_app.command("remove")
def remove(
    ctx: typer.Context,
    name: PoolName,
    host: Annotated[str | None, option("--host", "The member to remove, by name.")] = None,
    ip: Annotated[str | None, option("--ip", "The member to remove, by address.")] = None,
    wait: Wait = True,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Remove one idle member (a leased one never); the target drops by one."""
    with _client(ctx, debug) as client:
        execution = client.pools.remove(name, host=host, ip=ip, wait=False)
        _finished(ctx, client, execution, output)


@pool_app.command("refresh-ip")
def refresh_ip(
    ctx: typer.Context,
    name: PoolName,
    ip: Annotated[
        str | None, option("--ip", "Only the member at this address (default: every idle one).")
    ] = None,
    wait: Wait = True,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Give members a new public address (a new Elastic IP, the old one released)."""
    with _client(ctx, debug) as client:
        execution = client.pools.refresh_ip(name, "all" if ip is None else ip, wait=False)
        _finished(ctx, client, execution, output)


@pool_app.command("delete")
def delete(
    ctx: typer.Context,
    name: PoolName,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Drain and delete the pool: leased members go once released or expired."""
    with _client(ctx, debug) as client:
        pool = client.pools.delete(name)
    _print_pool({"pool": pool}, output)


@pool_app.command("costs")
def costs(
    ctx: typer.Context,
    name: PoolName,
    start: CostsStart = None,
    end: CostsEnd = None,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """What the pool's members cost on spot against on demand (as `mapt aws host costs`)."""
    from mapt.cli._host import _print_costs
    from mapt.costs import parse_day

    days = (
        None if start is None else parse_day(start, "--start"),
        None if end is None else parse_day(end, "--end"),
    )
    with _client(ctx, debug) as client:
        document = client.pools.costs(name, start=days[0], end=days[1], detail=True)
    if output is OutputFormat.json:
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_costs(name, document)


@pool_app.command("lease")
def lease(
    ctx: typer.Context,
    name: PoolName,
    conn_details_output: Annotated[
        str | None,
        option(
            "--conn-details-output",
            "Folder for the connection files (host, username, id_rsa, ...), mode 0600.",
        ),
    ] = None,
    ttl: Annotated[str, option("--ttl", "How long the lease holds (30m, 2h).")] = "1h",
    holder: Annotated[
        str | None, option("--holder", "Who takes it (default: the GitHub run, or the user).")
    ] = None,
    allow_cold_start: Annotated[
        bool, option("--allow-cold-start", "Start a member when none is idle, below maximum.")
    ] = False,
    wait_seconds: Annotated[
        float, option("--wait-seconds", "Wait this long for an idle member.", parser=number)
    ] = 0.0,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Lease a warm member: prints the lease id, writes the connection files.

    Where they go (the folder, ``$GITHUB_OUTPUT``) is checked before the lease is
    taken; a write that still fails names the lease, which is held until released.
    """
    from mapt.cli._github_output import check_github_output
    from mapt.core import MaptError, OperationError
    from mapt.targets import check_connection_folder, write_connection_files
    from mapt.targets.aws import CONNECTION_OUTPUTS

    if not 0 <= wait_seconds <= MAX_LEASE_WAIT_SECONDS:
        raise InputError(
            f"--wait-seconds {wait_seconds:g} is out of range: use 0 to "
            f"{MAX_LEASE_WAIT_SECONDS:g} (the longest a server waits for a member)"
        )
    folder = None if conn_details_output is None else check_connection_folder(conn_details_output)
    check_github_output()
    who = holder or _default_holder()
    with _client(ctx, debug) as client:
        leased = client.pools.lease(
            name, ttl=ttl, holder=who, allow_cold_start=allow_cold_start, wait=wait_seconds
        )
    try:
        files = (
            []
            if folder is None
            else write_connection_files(folder, leased.connection.values, known=CONNECTION_OUTPUTS)
        )
    except MaptError as error:
        raise OperationError(str(error), hint=_release_hint(name, leased.id)) from error
    _write_lease_output(name, leased.id, leased.host.name, leased.host.address, folder)
    if output is OutputFormat.json:
        document = {
            "lease": dict(leased.lease),
            "host": leased.host.to_dict(),
            "files": [str(path) for path in files],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(leased.id)


@pool_app.command("release")
def release(
    ctx: typer.Context,
    name: PoolName,
    lease_id: Annotated[str, typer.Argument(help="The lease's id.", show_default=False)],
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Return a leased member (replaced or kept, per the pool's strategy)."""
    with _client(ctx, debug) as client:
        document = client.pools.release(name, lease_id)
    if output is OutputFormat.json:
        typer.echo(json.dumps(document, indent=2))
        return
    execution = document.get("execution")
    then = f"; {execution['name']} {execution['id']}" if execution else "; kept idle"
    typer.echo(f"{document['lease']['id']} released ({document['lease']['host']}{then})")


def _default_holder() -> str:
    run = os.environ.get("GITHUB_RUN_ID")
    if run:
        return f"{os.environ.get('GITHUB_REPOSITORY', 'github')}/runs/{run}"
    from mapt.stacks import current_user

    return current_user()


def _write_lease_output(
    pool: str, lease_id: str, host: str, address: str | None, folder: Path | None
) -> None:
    """``lease-id``, ``host``, ``conn-details`` into ``$GITHUB_OUTPUT`` for later steps."""
    from mapt.cli._github_output import write_github_output

    values = {
        "lease-id": lease_id,
        "pool-host": host,
        "host": address,
        "conn-details": None if folder is None else str(folder.absolute()),
    }
    write_github_output(values, undo=_release_hint(pool, lease_id))


def _release_hint(pool: str, lease_id: str) -> str:
    return f"The lease {lease_id} is held; release it with: mapt pool release {pool} {lease_id}"
