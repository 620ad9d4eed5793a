"""The shared core every layer may import: run context, error hierarchy and logging.

It owns nothing that talks to a cloud or to Pulumi and imports only the standard
library and ``rich`` (lazily), so any layer, and ``mapt --help``, can load it cheaply.
Nothing here may import another ``mapt`` layer.
"""

from mapt.core._context import (
    PROJECT_NAME_MAX_LENGTH,
    RunContext,
    check_region_name,
    parse_tags,
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

__all__ = [
    "PROJECT_NAME_MAX_LENGTH",
    "ExitCode",
    "InputError",
    "MaptError",
    "NoCapacityError",
    "OperationError",
    "PrerequisiteError",
    "RunContext",
    "StateLockedError",
    "check_region_name",
    "configure_logging",
    "format_duration",
    "get_logger",
    "parse_duration",
    "parse_tags",
    "redact",
    "register_secret",
    "validate_project_name",
]
