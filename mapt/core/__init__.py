"""The shared core every layer may import: run context, errors, signals and logging.

It owns nothing that talks to a cloud or to Pulumi and imports only the standard
library, ``rich`` and ``botocore`` (both lazily, inside the functions that need them:
error translation and the known region names), so any layer, and ``mapt --help``, can
load it cheaply.
Nothing here may import another ``mapt`` layer.
"""

from mapt.core._aws_errors import (
    CREDENTIALS_HINT,
    PERMISSION_ERROR_CODES,
    aws_error,
    aws_error_code,
    is_aws_error,
    translating_aws_errors,
)
from mapt.core._aws_sessions import (
    aws_session,
    client_config,
    default_aws_session,
    load_ca_bundle,
    plain_json_loader,
    process_wide_sharing,
    shared_loader,
)
from mapt.core._context import (
    EVENTS_PROJECT,
    PROJECT_NAME_MAX_LENGTH,
    REGION_VARIABLES,
    RunContext,
    check_region_name,
    known_regions,
    parse_tags,
    region_from_environment,
    validate_host_project_name,
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
    filesystem_error,
)
from mapt.core._files import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    make_private_dir,
    write_private_file,
)
from mapt.core._interrupt import (
    Interrupted,
    Terminated,
    cancellable,
    deliver_again,
    raise_if_interrupted,
    stop,
    stop_pending,
    stopping_on_signals,
    uninterrupted,
)
from mapt.core._logging import (
    RedactingFilter,
    configure_logging,
    get_logger,
    redact,
    register_secret,
    without_password,
)
from mapt.core._text import (
    VALUE_LIMIT,
    clip,
    clip_values,
    comma_list,
    from_environment,
    shown,
)

__all__ = [
    "CREDENTIALS_HINT",
    "EVENTS_PROJECT",
    "PERMISSION_ERROR_CODES",
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "PROJECT_NAME_MAX_LENGTH",
    "REGION_VARIABLES",
    "VALUE_LIMIT",
    "ExitCode",
    "InputError",
    "Interrupted",
    "MaptError",
    "NoCapacityError",
    "OperationError",
    "PrerequisiteError",
    "RedactingFilter",
    "RunContext",
    "StateLockedError",
    "Terminated",
    "aws_error",
    "aws_error_code",
    "aws_session",
    "cancellable",
    "check_region_name",
    "client_config",
    "clip",
    "clip_values",
    "comma_list",
    "configure_logging",
    "default_aws_session",
    "deliver_again",
    "filesystem_error",
    "format_duration",
    "from_environment",
    "get_logger",
    "is_aws_error",
    "known_regions",
    "load_ca_bundle",
    "make_private_dir",
    "parse_duration",
    "parse_tags",
    "plain_json_loader",
    "process_wide_sharing",
    "raise_if_interrupted",
    "redact",
    "region_from_environment",
    "register_secret",
    "shared_loader",
    "shown",
    "stop",
    "stop_pending",
    "stopping_on_signals",
    "translating_aws_errors",
    "uninterrupted",
    "validate_host_project_name",
    "validate_project_name",
    "without_password",
    "write_private_file",
]
