"""``mapt aws``: commands for machines on Amazon Web Services."""

from __future__ import annotations

import typer

aws_app = typer.Typer(
    help="Machines on AWS: hosts, spot prices.",
    no_args_is_help=True,
)
