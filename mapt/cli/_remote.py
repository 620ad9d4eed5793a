"""The CLI's side of ``--server``: the same commands, sent to a ``mapt serve``.

With ``--server URL`` (or ``MAPT_SERVER``), ``mapt aws host create|destroy|list``
(and ``refresh-ip``, which only a server runs)
send their request to the server through ``mapt.client`` and, by default, wait for
its execution, showing its progress lines on stderr as the local command does; then
they print and write exactly what the local command would (the connection files,
``GITHUB_OUTPUT``). ``--no-wait`` prints the execution's id instead. Flags that only
mean something here (secrets the server must not store, a dry run, destroy's lock
options) are refused with exit 2 before anything is sent.

httpx loads with ``mapt.client`` inside these functions only: ``mapt --help`` does not.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer

from mapt.cli._options import OutputFormat, flag_name, given, secret_origin, secret_value
from mapt.core import InputError, Interrupted, PrerequisiteError, get_logger

if TYPE_CHECKING:
    from mapt.client import Client, Execution, Host

_log = get_logger("mapt.cli.remote")

# The command's parameters that say where and how to run, not what: never request fields.
REMOTE_PARAMETERS = ("server", "token", "token_file", "wait")


def server_client(ctx: typer.Context) -> Client | None:
    """The client of ``--server`` with its token; None to run the command here.

    ``--no-wait`` without a server is refused (a local command always waits); a
    server without a token is a missing prerequisite (exit 5), as the server's 401 is.
    """
    url = ctx.params.get("server")
    if url is None:
        if given(ctx, "wait") and not ctx.params.get("wait", True):
            raise InputError("--no-wait applies only with --server: a local command waits")
        return None
    return _authenticated(ctx, str(url))


def required_server_client(ctx: typer.Context, what: str) -> Client:
    """The client of ``--server`` for a command only a server runs (``mapt execution``).

    Without a server it is bad input (exit 2) saying ``what``, also with ``--no-wait``:
    no local command waits or not here.
    """
    url = ctx.params.get("server")
    if url is None:
        raise InputError(f"{what}: pass --server URL or set MAPT_SERVER")
    return _authenticated(ctx, str(url))


def _authenticated(ctx: typer.Context, url: str) -> Client:
    """The client of the server at ``url`` with the command's token (exit 5 without;
    exit 2 naming where it came from when it is not one a header can carry)."""
    from mapt.client import Client, check_token

    token = secret_value(ctx, "--token")
    if token is None:
        raise PrerequisiteError(
            f"no API token for the server {url}",
            hint="Set MAPT_TOKEN or pass --token-file FILE ('mapt serve token create' makes one).",
        )
    origin = secret_origin(ctx, "--token")
    check_token(token, what="the API token" if origin is None else f"the API token of {origin}")
    return Client(url, token)


def refuse_local_only(ctx: typer.Context, reasons: dict[str, str]) -> None:
    """Refuse (exit 2) each parameter of ``reasons`` given along with ``--server``."""
    for name, why in reasons.items():
        if name in ctx.params and (given(ctx, name) or given(ctx, f"{name}_file")):
            raise InputError(f"{flag_name(name)} does not work with --server: {why}")


def submitted(execution: Execution, output: OutputFormat) -> None:
    """``--no-wait``: the execution's id alone on stdout (JSON: the execution)."""
    if output is OutputFormat.json:
        typer.echo(json.dumps({"execution": execution.to_dict()}, indent=2))
    else:
        typer.echo(execution.id)
    _log.info(
        "%s of %s submitted: 'mapt execution logs %s --follow' shows its progress",
        execution.name,
        execution.target,
        execution.id,
    )


def followed(client: Client, execution: Execution) -> Execution:
    """The execution once it ended, its progress lines shown on stderr meanwhile.

    An interrupt (Ctrl-C, SIGTERM) stops the waiting, not the execution: the error
    says how to cancel it on the server.
    """
    from mapt.core import OperationError

    try:
        try:
            for line in client.executions.logs(execution.id, follow=True):
                typer.echo(line, err=True)  # the server's lines, as its log has them
        except OperationError as broke:  # the stream broke off: the execution goes on
            _log.warning("the log of execution %s broke off (%s)", execution.id, broke)
        return client.executions.wait(execution.id)
    except Interrupted as stopped:
        stopped.hint = (
            f"Execution {execution.id} goes on on the server: "
            f"'mapt execution cancel {execution.id}' stops it."
        )
        raise


# -- mapt aws host create|destroy|list --server -------------------------------------------

_CREATE_LOCAL_ONLY = {
    "dry_run": "the server has no dry run; run it here, without --server",
    "sandbox": "the server runs on the engine it was started with",
    "rh_subscription_password": "the server would have to store this secret",
    "ghactions_runner_token": "the server would have to store this secret",
    "ghactions_app_private_key": "the key is a file on this machine, not on the server",
}
# Destroy's backend and secrets provider may be given (a CI job sets MAPT_BACKED_URL for
# its create and its destroy alike) when they are those the server created the host with.
_DESTROY_SAME_AS_CREATE = ("backed_url", "secrets_provider")
_DESTROY_LOCAL_ONLY = {
    "sandbox": "the server runs on the engine it was started with",
    "force_destroy": "the server serializes the operations on a host itself",
    "keep_state": "the server keeps or purges state itself",
    "lock_timeout": "the server serializes the operations on a host itself",
    "ghactions_runner_repo": "the server removes the runner it registered",
    "ghactions_runner_org": "the server removes the runner it registered",
    "ghactions_app_id": "the server removes the runner it registered",
    "ghactions_app_installation_id": "the server removes the runner it registered",
    "ghactions_app_private_key": "the server removes the runner it registered",
}


def remote_create(
    ctx: typer.Context, client: Client, fields: dict[str, Any], output: OutputFormat
) -> None:
    """``mapt aws host create --server``: the host made there, its files written here."""
    from mapt.cli._github_output import check_github_output
    from mapt.cli._host import _print_create, _write_github_output
    from mapt.client import host_record
    from mapt.core import MaptError, RunContext
    from mapt.hosts import destroy_hint
    from mapt.targets import check_connection_folder, write_connection_files
    from mapt.targets.aws import CONNECTION_OUTPUTS

    refuse_local_only(ctx, _CREATE_LOCAL_ONLY)
    folder = fields.pop("conn_details_output", None)
    conn_dir = None if folder is None else check_connection_folder(folder)
    if ctx.params["wait"]:  # only a followed create writes it
        check_github_output()
    fields.pop("debug", None)
    project = str(fields.pop("project_name"))
    execution = client.hosts.create(name=project, **fields, wait=False)
    if not ctx.params["wait"]:
        submitted(execution, output)
        return
    execution = followed(client, execution).raise_for_error()
    record = host_record(execution.result, project=project)
    made = RunContext(project_name=project)
    undo = destroy_hint(made, None, None, server=client.url)
    if conn_dir is not None:
        connection = client.hosts.connection(project)
        try:
            files = write_connection_files(conn_dir, connection.values, known=CONNECTION_OUTPUTS)
        except MaptError as error:  # the host is made: say how to destroy it
            error.hint = destroy_hint(made, error.hint, None, server=client.url)
            raise
        record = replace(record, files=tuple(files))
    _write_github_output(record, conn_dir, undo=undo)
    _print_create(record, output)


def remote_destroy(ctx: typer.Context, client: Client, output: OutputFormat) -> None:
    """``mapt aws host destroy --server``; a host the server does not have (or has
    deleted) is nothing to destroy, as a project without stacks is locally, once the
    server's list of hosts confirms it (``_managed_host``)."""
    from mapt.cli._host import _print_destroy
    from mapt.client import HostState, destroy_record
    from mapt.hosts import DestroyRecord

    refuse_local_only(ctx, _DESTROY_LOCAL_ONLY)
    project = str(ctx.params["project_name"])
    host = _managed_host(client, project)
    for name in _DESTROY_SAME_AS_CREATE:
        wanted = ctx.params.get(name)
        if host is not None and given(ctx, name) and wanted != host.fields.get(name):
            raise InputError(
                f"{flag_name(name)} {wanted!r} is not what the server created host "
                f"{project!r} with ({host.fields.get(name)!r}): leave it out with --server"
            )
    if host is None or host.state is HostState.DELETED:
        _print_destroy(f"the server {client.url}", DestroyRecord(project, ()), output)
        return
    execution = client.hosts.delete(project, wait=False)
    if not ctx.params["wait"]:
        submitted(execution, output)
        return
    result = followed(client, execution).raise_for_error().result
    if output is OutputFormat.json:
        typer.echo(json.dumps(result, indent=2))  # the document the local command prints
    else:
        _print_destroy(f"the server {client.url}", destroy_record(result), output)


def _managed_host(client: Client, project: str) -> Host | None:
    """The server's record of host ``project``; None when the server has no such host.

    A 404 alone does not say so: a wrong ``--server`` (a path prefix the server does not
    serve, a proxy's page) answers 404 too, and mapt's own answer for an unknown route
    has the same shape as its answer for an unknown host. The server's list of hosts
    settles it: the host is the one listed, None when the list leaves it out; a list
    that is not found either means the URL is wrong, a failure naming it (exit 1),
    not "Nothing to destroy".
    """
    from mapt.client import NotFoundError
    from mapt.core import OperationError

    try:
        return client.hosts.get(project)
    except NotFoundError:
        pass
    try:
        listed = client.hosts.list()
    except NotFoundError as unlisted:
        raise OperationError(
            f"cannot tell whether the server {client.url} has host {project!r}: its list "
            f"of hosts is not found either ({unlisted})",
            hint="Check --server (MAPT_SERVER): it is the base URL 'mapt serve' listens on.",
        ) from None
    return next((host for host in listed if host.name == project), None)


def remote_refresh_ip(ctx: typer.Context, client: Client, output: OutputFormat) -> None:
    """``mapt aws host refresh-ip --server``: the new address, the connection files of
    ``--conn-details-output`` written again here (the folder checked before the call)."""
    from mapt.client import address_change
    from mapt.targets import check_connection_folder, write_connection_files
    from mapt.targets.aws import CONNECTION_OUTPUTS

    folder = ctx.params.get("conn_details_output")
    conn_dir = None if folder is None else check_connection_folder(folder)
    project = str(ctx.params["project_name"])
    execution = client.hosts.refresh_ip(project, wait=False)
    if not ctx.params["wait"]:
        submitted(execution, output)
        return
    change = address_change(followed(client, execution).raise_for_error().result)
    files: list[Any] = []
    if conn_dir is not None:
        connection = client.hosts.connection(project)
        files = write_connection_files(conn_dir, connection.values, known=CONNECTION_OUTPUTS)
        change = replace(change, host=replace(change.host, files=tuple(files)))
    if output is OutputFormat.json:
        typer.echo(json.dumps(change.to_dict(), indent=2))
        return
    lines = [f"Host {project!r} has a new address: {change.new_address}"]
    lines.append(f"released:          {change.old_address}")
    if files:
        lines.append(f"connection files:  {', '.join(str(path) for path in files)}")
    typer.echo("\n".join(lines))


def remote_list(ctx: typer.Context, client: Client, output: OutputFormat) -> None:
    """``mapt aws host list --server``: the server's hosts, as the local table shows them
    (a host an execution works on shows as locked); JSON: the server's records."""
    from mapt.cli._host import _print_hosts

    # MAPT_BACKED_URL may be set for the job's other commands; the flag is a mistake.
    source = ctx.get_parameter_source("backed_url")
    if source is not None and source.name == "COMMANDLINE":
        raise InputError("--backed-url does not work with --server: it lists its own hosts")
    hosts = client.hosts.list()
    if output is OutputFormat.json:
        typer.echo(json.dumps({"hosts": [host.to_dict() for host in hosts]}, indent=2))
    else:
        _print_hosts([host.as_status() for host in hosts], f"the server {client.url}")
