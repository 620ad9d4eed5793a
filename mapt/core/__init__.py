"""The shared core every layer may import: run context, error hierarchy and logging.

It owns nothing that talks to a cloud or to Pulumi and imports only the standard
library, ``rich`` (lazily) and botocore's endpoint data (lazily, to know region names),
so any layer, and ``mapt --help``, can load it cheaply.
Nothing here may import another ``mapt`` layer.
"""

from mapt.core._context import (
    PROJECT_NAME_MAX_LENGTH,
    REGION_VARIABLES,
    RunContext,
    check_region_name,
    known_regions,
    parse_tags,
    region_from_environment,
    validate_project_name,
)
from mapt.core._duration import format_duration, parse_duration
from mapt.core._errors import (
    ExitCode,
    InputError,
    MaptError,
    NoCapacityError,
    OperationError,
    PrerequisiteError,
    StateLockedError,
)
from mapt.core._logging import configure_logging, get_logger, redact, register_secret
from mapt.core._text import VALUE_LIMIT, clip, clip_values, from_environment, shown

__all__ = [
    "PROJECT_NAME_MAX_LENGTH",
    "REGION_VARIABLES",
    "VALUE_LIMIT",
    "ExitCode",
    "InputError",
    "MaptError",
    "NoCapacityError",
    "OperationError",
    "PrerequisiteError",
    "RunContext",
    "StateLockedError",
    "check_region_name",
    "clip",
    "clip_values",
    "configure_logging",
    "format_duration",
    "from_environment",
    "get_logger",
    "known_regions",
    "parse_duration",
    "parse_tags",
    "redact",
    "region_from_environment",
    "register_secret",
    "shown",
    "validate_project_name",
]
