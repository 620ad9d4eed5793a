"""``mapt setup``: prepare this machine for mapt (today: the Pulumi CLI).

mapt deploys through the Pulumi CLI. When it is missing every deploying command
fails with exit code 5 and points here. Pulumi is imported inside the command
body, so ``mapt --help`` stays fast.
"""

# Annotations stay objects here (no `from __future__ import annotations`): Typer reads
# every command's annotations at each start, and strings it would evaluate twice.

from pathlib import Path
from typing import Annotated

import typer

from mapt.cli._console import command_group
from mapt.cli._options import refuse_empty

setup_app = command_group("Prepare this machine for mapt: install the tools it drives.")


@setup_app.command("pulumi")
def setup_pulumi(
    # typer.Option, not option(): MAPT_VERSION is host create's --version, and an
    # empty value is refused all the same. --root is read as text, so that "" reaches
    # refuse_empty (as a Path it would be ".", the current folder).
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Pulumi CLI version to install (default: the one matching mapt's Pulumi SDK).",
            callback=refuse_empty,
        ),
    ] = None,
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            help="Install into ROOT/bin (default: $PULUMI_HOME, else ~/.pulumi).",
            callback=refuse_empty,
        ),
    ] = None,
) -> None:
    """Install the Pulumi CLI with pulumi.automation's PulumiCommand.install().

    Keeps a usable CLI that is already there (unless --version or --root asks for
    another); otherwise downloads Pulumi's installer from get.pulumi.com.
    """
    from mapt.core import InputError, MaptError, shown
    from mapt.stacks import MIN_PULUMI_VERSION, find_pulumi, install_pulumi, pulumi_command

    folder = None if root is None else Path(root)
    if folder is not None and folder.exists() and not folder.is_dir():
        raise InputError(f"--root {shown(root)} is a file, not a folder")
    if version is None and folder is None and find_pulumi() is not None:
        try:
            command = pulumi_command()
        except MaptError:
            command = None  # too old or broken: install a current one below
        if command is not None:
            typer.echo(f"Pulumi CLI {command.version} is installed ({find_pulumi()}).")
            return
    command = install_pulumi(root=folder, version=version)
    location = Path(command.command)
    typer.echo(f"Installed Pulumi CLI {command.version} at {location}.")
    typer.echo(
        f"mapt finds it there; to use it yourself, add {location.parent} to PATH. "
        f"(mapt needs Pulumi {MIN_PULUMI_VERSION} or newer.)"
    )
