"""Option declarations shared by commands, with mapt's flag names and defaults.

Each option also reads ``MAPT_<OPTION>`` from the environment (e.g. ``MAPT_CPUS``), so a
CI job can set them once. Conversions from raw text to request objects live here too,
so every command refuses bad input with the same one-line message.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any

import typer

from mapt.core import InputError


def env(flag: str) -> str:
    """The environment variable that can stand in for ``--flag``: ``MAPT_FLAG``."""
    return "MAPT_" + flag.lstrip("-").replace("-", "_").upper()


def option(flag: str, help: str, **kwargs: Any) -> Any:
    """A Typer option with its ``MAPT_*`` environment variable."""
    return typer.Option(flag, envvar=env(flag), help=help, **kwargs)


def whole_number(text: str | int) -> int:
    """Parse a whole number, naming the text when it is not one."""
    try:
        return int(text)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{text!r} is not a whole number") from None


def number(text: str | float) -> float:
    """Parse a decimal number, naming the text when it is not one."""
    try:
        return float(text)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{text!r} is not a number") from None


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def given(ctx: typer.Context, name: str) -> bool:
    """Whether parameter ``name`` was set on the command line or by its ``MAPT_*`` variable."""
    source = ctx.get_parameter_source(name)
    # Compared by name: Typer may bundle its own copy of Click's ParameterSource.
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def comma_list(flag: str, value: str | None) -> tuple[str, ...]:
    """Split ``a,b,c``; None (flag not given) is empty, an explicitly empty list is an error."""
    if value is None:
        return ()
    items = tuple(item.strip() for item in value.split(","))
    if not value.strip() or any(not item for item in items):
        raise InputError(f"{flag} {value!r} has an empty item: give a comma-separated list")
    return items


Cpus = Annotated[int, option("--cpus", "vCPUs of the machine.", parser=whole_number)]
Memory = Annotated[float, option("--memory", "Memory of the machine in GiB.", parser=number)]
Arch = Annotated[str, option("--arch", "CPU architecture: x86_64 or arm64.")]
Gpus = Annotated[int, option("--gpus", "Number of GPUs.", parser=whole_number)]
GpuManufacturer = Annotated[
    str | None, option("--gpu-manufacturer", "GPU manufacturer (nvidia, amd, ...).")
]
NestedVirt = Annotated[
    bool, option("--nested-virt", "Need nested virtualization: bare-metal types only.")
]
ComputeSizes = Annotated[
    str | None,
    option("--compute-sizes", "Explicit instance types, comma-separated; override the shape."),
]
ComputeFamilies = Annotated[
    str | None,
    option("--compute-families", "Only these instance families (m5 keeps m5.large, not m5a)."),
]
Tolerance = Annotated[
    str,
    option(
        "--spot-eviction-tolerance",
        "How much eviction risk is acceptable: lowest, low, medium, high, highest.",
    ),
]
IncreaseRate = Annotated[
    float,
    option(
        "--spot-increase-rate",
        "Percent added to the spot price to form the max price.",
        parser=number,
    ),
]
ExcludedRegions = Annotated[
    str | None,
    option("--spot-excluded-regions", "Regions never to use, comma-separated."),
]
ProductDescription = Annotated[
    str,
    option(
        "--product-description",
        "Spot product to price: Linux/UNIX, Red Hat Enterprise Linux, Windows, ...",
    ),
]
Region = Annotated[str | None, option("--region", "AWS region (default: AWS_REGION).")]
ProjectName = Annotated[
    str,
    option("--project-name", "Name of the project: its stacks are <kind>-<project>."),
]
BackedUrl = Annotated[
    str | None,
    typer.Option(
        "--backed-url",
        "--backend-url",
        envvar=[env("--backed-url"), env("--backend-url")],
        help="State backend: file://PATH or s3://BUCKET\\[/PREFIX] (default: local state).",
    ),
]
SecretsProvider = Annotated[
    str | None,
    option(
        "--secrets-provider",
        "How state secrets are encrypted: passphrase (default) or awskms://KEY?region=R.",
    ),
]
LockTimeout = Annotated[
    str,
    option(
        "--lock-timeout",
        "How long to wait for another run of the same project to finish (e.g. 5m).",
    ),
]
Tags = Annotated[str | None, option("--tags", "Tags for every resource: k=v,k2=v2.")]
Output = Annotated[OutputFormat, option("--output", "Output format: text or json.")]
Debug = Annotated[bool, option("--debug", "Verbose logs, and tracebacks with errors.")]


def compute_request(params: Mapping[str, Any]) -> Any:
    """Build a validated ``ComputeRequest`` from a command's compute flags (``ctx.params``)."""
    from mapt.allocation import ComputeRequest

    return ComputeRequest(
        cpus=params["cpus"],
        memory_gib=params["memory"],
        arch=params["arch"],
        gpus=params["gpus"],
        gpu_manufacturer=params["gpu_manufacturer"] or None,
        nested_virt=params["nested_virt"],
        compute_sizes=comma_list("--compute-sizes", params["compute_sizes"]),
        compute_families=comma_list("--compute-families", params["compute_families"]),
    )


def spot_args(*, tolerance: str, increase_rate: float, excluded_regions: str | None) -> Any:
    """Build validated ``SpotArgs`` from the spot flags."""
    from mapt.allocation import SpotArgs

    return SpotArgs(
        tolerance=tolerance,
        increase_rate=increase_rate,
        excluded_regions=comma_list("--spot-excluded-regions", excluded_regions),
    )
