"""``mapt aws spot-price``: rank the spot market for a machine, creating nothing."""

# Annotations stay objects here (no `from __future__ import annotations`): Typer reads
# every command's annotations at each start, and strings it would evaluate twice.

import json
from typing import Any

import typer

from mapt.cli._console import console
from mapt.cli._options import (
    Arch,
    ComputeFamilies,
    ComputeSizes,
    Cpus,
    Debug,
    ExcludedRegions,
    GpuManufacturer,
    Gpus,
    IncreaseRate,
    Memory,
    NestedVirt,
    Output,
    OutputFormat,
    ProductDescription,
    Region,
    Tolerance,
    compute_request,
    requested_region,
    spot_args,
)


def spot_price(
    ctx: typer.Context,
    cpus: Cpus = 8,
    memory: Memory = 64,
    arch: Arch = None,
    gpus: Gpus = 0,
    gpu_manufacturer: GpuManufacturer = None,
    nested_virt: NestedVirt = False,
    compute_sizes: ComputeSizes = None,
    compute_families: ComputeFamilies = None,
    spot_eviction_tolerance: Tolerance = "lowest",
    spot_increase_rate: IncreaseRate = 30.0,
    spot_excluded_regions: ExcludedRegions = None,
    product_description: ProductDescription = "Linux/UNIX",
    region: Region = None,
    output: Output = OutputFormat.text,
    debug: Debug = False,
) -> None:
    """Rank every availability zone that can run the machine on spot, best first.

    Read-only: it queries EC2 (and the Pricing API for on-demand prices, when it
    answers) and creates nothing, not even state. The flags and their checks are
    those of `mapt aws host create`.
    """
    from mapt.allocation import AllocationArgs, check_credentials, spot_offer_rows
    from mapt.cli._app import set_debug
    from mapt.core import aws_session

    set_debug(ctx, debug)
    args = AllocationArgs(
        compute_request=compute_request(ctx),
        ami_product_description=product_description,
        spot=spot_args(
            tolerance=spot_eviction_tolerance,
            increase_rate=spot_increase_rate,
            excluded_regions=spot_excluded_regions,
        ),
        session=aws_session(),
    )
    home_region = requested_region(region)
    check_credentials(args.session)
    rows = spot_offer_rows(args, home_region=home_region)
    if output is OutputFormat.json:
        typer.echo(json.dumps({"offers": rows}, indent=2))
    else:
        _print_table(rows)


def _print_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    with_on_demand = any("on_demand_price" in row for row in rows)
    table = Table(title="Spot offers, best first")
    for column in ("#", "region", "zone (id)", "score", "spot $/h", "max $/h"):
        table.add_column(column, justify="right" if "$" in column or column == "#" else "left")
    if with_on_demand:
        table.add_column("on-demand $/h", justify="right")
        table.add_column("saving", justify="right")
    table.add_column("instance types (cheapest first)")
    for rank, row in enumerate(rows, start=1):
        cells = [
            str(rank),
            row["region"],
            f"{row['availability_zone']} ({row['availability_zone_id']})",
            "?" if row["score"] is None else str(row["score"]),
            f"{row['spot_price']:.4f}",
            f"{row['max_price']:.4f}",
        ]
        if with_on_demand:
            on_demand = row.get("on_demand_price")
            saving = row.get("saving_percent")
            cells += [
                "-" if on_demand is None else f"{on_demand:.4f}",
                "-" if saving is None else f"{saving:.0f}%",
            ]
        cells.append(", ".join(row["instance_types"]))
        table.add_row(*cells)
    console().print(table)
