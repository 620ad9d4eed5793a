"""``mapt aws``: commands for machines on Amazon Web Services."""

from __future__ import annotations

import typer

from mapt.cli._host import host_app
from mapt.cli._spot_price import spot_price
from mapt.cli._sweep import sweep

aws_app = typer.Typer(
    help="Machines on AWS: hosts, spot prices.",
    no_args_is_help=True,
)
aws_app.add_typer(host_app, name="host")
aws_app.command("spot-price")(spot_price)
aws_app.command("sweep")(sweep)
