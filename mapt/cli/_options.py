"""Option declarations shared by commands, with mapt's flag names and defaults.

Each option also reads ``MAPT_<OPTION>`` from the environment (e.g. ``MAPT_CPUS``), so a
CI job can set them once. Conversions from raw text to request objects live here too,
so every command refuses bad input with the same one-line message: ``spot-price`` and
``host create`` share the compute, spot and region flags and their one validation.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
from typing import Annotated, Any

import typer

from mapt.core import (
    InputError,
    get_logger,
    register_secret,
    shown,
    validate_host_project_name,
)

_log = get_logger(__name__)


def env(flag: str) -> str:
    """The environment variable that can stand in for ``--flag``: ``MAPT_FLAG``."""
    return "MAPT_" + flag.lstrip("-").replace("-", "_").upper()


def option(flag: str, help: str, **kwargs: Any) -> Any:
    """A Typer option with its ``MAPT_*`` environment variable; an empty value is refused.

    ``--flag ""`` means nothing any mapt flag could use, so it is an error, not "unset".
    (An empty ``MAPT_*`` variable is "unset": Click ignores it, as CI templates expect.)
    """
    kwargs.setdefault("callback", refuse_empty)
    return typer.Option(flag, envvar=env(flag), help=help, **kwargs)


def refuse_empty(param: typer.CallbackParam, value: Any) -> Any:
    """The option callback refusing a blank text value, naming the flag."""
    if isinstance(value, str) and not value.strip():
        flag = param.opts[0] if param.opts else str(param.name)
        raise InputError(f"{flag} {value!r} is empty: give a value, or leave the flag out")
    return value


def host_project_name(param: typer.CallbackParam, value: str) -> str:
    """The option callback refusing a name no host project may take, naming the flag.

    Every ``host`` command checks it up front, so none reads or purges the state of
    mapt's own event intake project under a host's name.
    """
    flag = param.opts[0] if param.opts else str(param.name)
    return validate_host_project_name(refuse_empty(param, value), flag)


# ASCII digits only: int() and float() also take other scripts' digits (Arabic-Indic
# "٤"), underscores ("1_0"), "inf" and "nan", none of which a flag value should be.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def whole_number(text: str | int) -> int:
    """Parse a whole number written in ASCII digits, naming the text when it is not one."""
    if isinstance(text, int):
        return text
    try:
        if _WHOLE_NUMBER.fullmatch(text.strip()):
            return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        pass
    raise typer.BadParameter(f"{shown(text)} is not a whole number")


def number(text: str | float) -> float:
    """Parse a finite decimal number in ASCII digits, naming the text when it is not one."""
    if isinstance(text, (int, float)):
        return float(text)
    value = float(text) if _NUMBER.fullmatch(text.strip()) else None
    if value is None or value in (float("inf"), float("-inf")):
        raise typer.BadParameter(f"{shown(text)} is not a number")
    return value


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def given(ctx: typer.Context, name: str) -> bool:
    """Whether parameter ``name`` was set on the command line or by its ``MAPT_*`` variable."""
    source = ctx.get_parameter_source(name)
    # Compared by name: Typer may bundle its own copy of Click's ParameterSource.
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


# -- secrets ----------------------------------------------------------------------------
# A secret flag (a token, a password) comes in two options: ``--flag VALUE``, which any
# user of the machine can read in the process list (/proc/<pid>/cmdline), and
# ``--flag-file PATH`` (``-`` for stdin), which keeps it out of there. Both also read
# their ``MAPT_*`` variable; the environment of a process is private to its user.

# The ``<flag>-file`` value that means standard input.
_STDIN = "-"


def secret_option(flag: str, help: str) -> Any:
    """The literal form of a secret flag; its help names the safer ways to pass it."""
    return option(
        flag,
        f"{help} Other users can see it on the command line: prefer {env(flag)} or {flag}-file.",
    )


def secret_file_option(flag: str) -> Any:
    """``<flag>-file``: read the secret of ``flag`` from a file, or stdin for ``-``."""
    return option(
        f"{flag}-file",
        f"Read {flag} from this file ('{_STDIN}': standard input).",
        metavar="FILE",
    )


def secret_value(ctx: typer.Context, flag: str) -> str | None:
    """The secret given with ``flag``, ``<flag>-file`` or their variables; None if neither.

    Both forms at once are refused (exit 2), as is a file that cannot be read or
    holds nothing. The literal form given on the command line still works but warns
    that other users can read it. The value is registered for log redaction and never
    appears in a message.
    """
    file_flag = f"{flag}-file"
    name, file_name = _parameter_name(ctx, flag), _parameter_name(ctx, file_flag)
    literal, path = ctx.params.get(name), ctx.params.get(file_name)
    if literal is not None and path is not None:
        raise InputError(
            f"{_origin(ctx, name, flag)} and {_origin(ctx, file_name, file_flag)} are both "
            "given: pass the secret one way"
        )
    if path is not None:
        value = _read_secret(ctx, file_flag, str(path))
    elif literal is not None:
        value = str(literal)
        if _source(ctx, name) == "COMMANDLINE":
            _log.warning(
                "%s on the command line is visible to other users of this machine (ps, "
                "/proc/<pid>/cmdline); set %s or pass %s FILE ('-' for stdin) instead",
                flag,
                env(flag),
                file_flag,
            )
    else:
        return None
    register_secret(value)
    return value


def secret_origin(ctx: typer.Context, flag: str) -> str | None:
    """Where the secret of ``flag`` came from, for a message about it that must not show
    it: ``--flag-file 'PATH'`` or ``--flag``; None when its variable gave it, which the
    error line names itself (``error_line``: ``MAPT_FLAG=*** (from the environment)``)."""
    file_flag = f"{flag}-file"
    path = ctx.params.get(_parameter_name(ctx, file_flag))
    if path is not None:
        return f"{file_flag} {str(path)!r}"
    return None if _source(ctx, _parameter_name(ctx, flag)) == "ENVIRONMENT" else flag


def _read_secret(ctx: typer.Context, file_flag: str, path: str) -> str:
    """The text of a secret file (or stdin), without its final line break."""
    if path == _STDIN:
        # Checked before reading: the first reader would leave the second nothing.
        others = [
            parameter.opts[0]
            for parameter in ctx.command.params
            if parameter.opts[0].endswith("-file")
            and parameter.opts[0] != file_flag
            and ctx.params.get(parameter.name or "") == _STDIN
        ]
        if others:
            raise InputError(
                f"{file_flag} '{_STDIN}' and {others[0]} '{_STDIN}' both read standard input: "
                "give one of them a file"
            )
    try:
        if path == _STDIN:
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as error:
        raise InputError(f"{file_flag} {path!r} cannot be read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{file_flag} {path!r} is not UTF-8 text") from None
    value = text.rstrip("\r\n")
    if not value:
        raise InputError(f"{file_flag} {path!r} is empty")
    return value


def _parameter_name(ctx: typer.Context, flag: str) -> str:
    """The name of the command's parameter declared with ``flag``."""
    for parameter in ctx.command.params:
        if flag in getattr(parameter, "opts", ()):
            assert parameter.name is not None
            return parameter.name
    raise LookupError(f"{ctx.command.name} declares no {flag}")


def _source(ctx: typer.Context, name: str) -> str | None:
    source = ctx.get_parameter_source(name)
    return None if source is None else source.name


def _origin(ctx: typer.Context, name: str, flag: str) -> str:
    """``flag``, or its variable when the value came from there (for messages)."""
    return env(flag) if _source(ctx, name) == "ENVIRONMENT" else flag


Cpus = Annotated[int, option("--cpus", "vCPUs of the machine.", parser=whole_number)]
Memory = Annotated[float, option("--memory", "Memory of the machine in GiB.", parser=number)]
Arch = Annotated[
    str | None,
    option(
        "--arch",
        "CPU architecture: x86_64 or arm64 (default: that of the --compute-sizes types, "
        "else x86_64).",
    ),
]
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
DnsZone = Annotated[
    str | None,
    option(
        "--dns-zone",
        "A public Route53 hosted zone's name (ci.example.com): the host gets the name "
        "<project>.<zone>; a spot host then has no load balancer.",
    ),
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
Region = Annotated[
    str | None,
    option("--region", "AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION)."),
]
ProjectName = Annotated[
    str,
    option(
        "--project-name",
        "Name of the project: its stacks are <kind>-<project>.",
        callback=host_project_name,
    ),
]
BackedUrl = Annotated[
    str | None,
    typer.Option(
        "--backed-url",
        "--backend-url",
        envvar=[env("--backed-url"), env("--backend-url")],
        help="State backend: file://PATH or s3://BUCKET[/PREFIX] (default: local state).",
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
Sandbox = Annotated[
    bool,
    option(
        "--sandbox",
        "Apply to an AWS-compatible endpoint on 127.0.0.1 (moto), never to AWS; see "
        "docs/sandbox.md.",
    ),
]


def flag_name(name: str) -> str:
    """The flag of parameter ``name``: ``compute_sizes`` -> ``--compute-sizes``."""
    from mapt.hosts import flag_name as field_flag

    return field_flag(name)


def given_fields(ctx: typer.Context, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The parameters (of ``names``, default all) set on the command line or environment.

    What ``mapt.hosts``' field validation takes: a field left out takes its default,
    one given counts as given even with the default's value.
    """
    chosen = ctx.params if names is None else names
    return {name: ctx.params[name] for name in chosen if given(ctx, name)}


def compute_request(ctx: typer.Context) -> Any:
    """A validated ``ComputeRequest`` from a command's compute flags (``mapt.hosts``'s check).

    ``--compute-sizes`` names the types and excludes the shape flags; ``--arch`` not
    given leaves the architecture to the named types (x86_64 for a shape).
    """
    from mapt.hosts import COMPUTE_FIELDS, compute_from_fields

    return compute_from_fields(given_fields(ctx, COMPUTE_FIELDS))


def spot_args(*, tolerance: str, increase_rate: float, excluded_regions: str | None) -> Any:
    """Build validated ``SpotArgs`` from the spot flags (``mapt.hosts``'s check)."""
    from mapt.hosts import spot_from_fields

    return spot_from_fields(
        {
            "spot_eviction_tolerance": tolerance,
            "spot_increase_rate": increase_rate,
            "spot_excluded_regions": excluded_regions,
        }
    )


def requested_region(value: str | None) -> str | None:
    """The ``--region`` asked for, else ``AWS_REGION``/``AWS_DEFAULT_REGION``, checked.

    The message names the flag or the variable the bad name came from.
    """
    from mapt.hosts import requested_region as checked_region

    return checked_region(value, "--region")


# -- a server (``mapt serve``) instead of running here ------------------------------------

ServerUrl = Annotated[
    str | None,
    option(
        "--server",
        "URL of a `mapt serve` to send the request to, instead of running it here.",
    ),
]
# The token is a secret: MAPT_TOKEN or --token-file keep it out of the process list.
Token = Annotated[str | None, secret_option("--token", "API token of the --server.")]
TokenFile = Annotated[str | None, secret_file_option("--token")]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        envvar=env("--wait"),
        help="With --server: wait for the execution to end (--no-wait: print its id).",
    ),
]

# The window of ``mapt aws host costs`` and ``mapt pool costs``.
CostsStart = Annotated[
    str | None, option("--start", "From this day, YYYY-MM-DD (UTC; default: creation).")
]
CostsEnd = Annotated[
    str | None, option("--end", "Until this day, YYYY-MM-DD (UTC; both days count).")
]
