"""``mapt aws``: commands for machines on Amazon Web Services."""

from __future__ import annotations

import typer

from mapt.cli._spot_price import spot_price

aws_app = typer.Typer(
    help="Machines on AWS: hosts, spot prices.",
    no_args_is_help=True,
)
aws_app.command("spot-price")(spot_price)
