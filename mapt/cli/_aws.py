"""``mapt aws``: commands for machines on Amazon Web Services."""

from __future__ import annotations

from mapt.cli._console import command_group
from mapt.cli._host import host_app
from mapt.cli._spot_price import spot_price
from mapt.cli._sweep import sweep

aws_app = command_group("Machines on AWS: hosts, spot prices.")
aws_app.add_typer(host_app, name="host")
aws_app.command("spot-price")(spot_price)
aws_app.command("sweep")(sweep)
