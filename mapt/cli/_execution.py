"""``mapt execution get|list|logs|cancel``: the work of a ``mapt serve``, by execution.

Every change a server makes runs as an execution with an id (``mapt aws host create
--server ... --no-wait`` prints it). These commands read them, follow their progress
lines and cancel them; each needs ``--server`` and a token (``MAPT_TOKEN`` or
``--token-file``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from mapt.cli._console import command_group
from mapt.cli._options import (
    Debug,
    Output,
    OutputFormat,
    ServerUrl,
    Token,
    TokenFile,
    Wait,
    option,
)

if TYPE_CHECKING:
    from mapt.client import Client, Execution

execution_app = command_group("Executions of a `mapt serve` (--server): get, list, logs, cancel.")

ExecutionId = Annotated[str, typer.Argument(help="The execution's id.", show_default=False)]


def _client(ctx: typer.Context, debug: bool) -> Client:
    from mapt.cli._app import set_debug
    from mapt.cli._remote import required_server_client

    set_debug(ctx, debug)
    return required_server_client(ctx, "executions live on a server")


@execution_app.command("get")
def get(
    ctx: typer.Context,
    execution_id: ExecutionId,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Show one execution: what it does, its status, its times, its error."""
    with _client(ctx, debug) as client:
        execution = client.executions.get(execution_id)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"execution": execution.to_dict()}, indent=2))
        return
    typer.echo(_described(execution))


@execution_app.command("list")
def list_command(
    ctx: typer.Context,
    include_completed: Annotated[
        bool,
        option("--include-completed", "Also the executions that ended."),
    ] = False,
    target: Annotated[
        str | None, option("--target", "Only the executions of this host (its project).")
    ] = None,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """List the executions not ended yet (or all), oldest first."""
    with _client(ctx, debug) as client:
        found = client.executions.list(include_completed=include_completed, target=target)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"executions": [e.to_dict() for e in found]}, indent=2))
        return
    if not found:
        typer.echo("No executions." if include_completed else "No executions running or pending.")
        return
    from rich.table import Table

    from mapt.cli._console import console

    table = Table()
    for column in ("id", "name", "target", "status", "created", "error"):
        table.add_column(column)
    for execution in found:
        table.add_row(
            execution.id,
            execution.name,
            execution.target,
            execution.status.value,
            _time(execution.created_at),
            "" if execution.error is None else execution.error.type,
        )
    console().print(table)


@execution_app.command("logs")
def logs(
    ctx: typer.Context,
    execution_id: ExecutionId,
    follow: Annotated[
        bool, option("--follow", "Keep printing new lines until the execution ends.")
    ] = False,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Print the execution's progress lines (those the local command prints on stderr)."""
    with _client(ctx, debug) as client:
        for line in client.executions.logs(execution_id, follow=follow):
            typer.echo(line)


@execution_app.command("cancel")
def cancel(
    ctx: typer.Context,
    execution_id: ExecutionId,
    wait: Wait = True,
    output: Output = OutputFormat.text,
    server: ServerUrl = None,
    token: Token = None,
    token_file: TokenFile = None,
    debug: Debug = False,
) -> None:
    """Cancel an execution: a pending one never runs; a running one is asked to stop
    (Pulumi saves its state). Waits until it ended unless --no-wait."""
    with _client(ctx, debug) as client:
        execution = client.executions.cancel(execution_id, wait=wait)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"execution": execution.to_dict()}, indent=2))
        return
    typer.echo(_described(execution))


def _described(execution: Execution) -> str:
    lines = [
        f"id:        {execution.id}",
        f"name:      {execution.name}",
        f"target:    {execution.target}",
        f"status:    {execution.status.value}"
        + (" (cancel requested)" if execution.cancel_requested and not execution.finished else ""),
        f"created:   {_time(execution.created_at)}",
        f"started:   {_time(execution.started_at)}",
        f"finished:  {_time(execution.finished_at)}",
    ]
    if execution.error is not None:
        error = execution.error
        lines.append(f"error:     {error.type} (exit {error.exit_code}): {error.message}")
    return "\n".join(lines)


def _time(value: object) -> str:
    from datetime import datetime

    if not isinstance(value, datetime):
        return "-"
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")
