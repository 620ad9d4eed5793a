"""AWS failures as ``MaptError``: one line naming the call, where it went, and AWS's reason.

botocore reports an answer AWS gave as ``ClientError`` (with AWS's error code and
message) and everything else as a ``BotoCoreError`` subclass, plus the bare
``ResponseParserError`` for an answer it cannot parse (an HTML error page). Every
layer translates them here, so the same failure reads the same wherever it happens and
carries the documented exit code:

- missing, invalid or expired credentials: ``PrerequisiteError`` (exit 5), with how
  to provide them;
- a malformed region name: ``InputError`` (exit 2);
- everything else (an unreachable endpoint, throttling that outlasted botocore's
  retries, an unparseable answer, any other AWS error): ``OperationError`` (exit 1).

botocore is imported inside the functions: ``mapt.core`` stays cheap to import.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mapt.core._errors import InputError, MaptError, OperationError, PrerequisiteError
from mapt.core._logging import redact

# ClientError codes that mean "these credentials are missing, wrong or expired"
# (not "this identity may not do that": AccessDenied stays an operation failure).
CREDENTIAL_ERROR_CODES = frozenset(
    {
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "InvalidToken",
        "MissingAuthenticationToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
    }
)
# ClientError codes that mean "this identity may not make this call": the account's
# answer, the same in every region and on every retry.
PERMISSION_ERROR_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
)
# botocore's credential-chain failures, by class name (some are newer than others).
_CREDENTIAL_EXCEPTIONS = (
    "NoCredentialsError",
    "PartialCredentialsError",
    "CredentialRetrievalError",
    "NoAuthTokenError",
    "TokenRetrievalError",
    "UnknownCredentialError",
    "ProfileNotFound",
    "SSOError",
    "LoginError",
)
CREDENTIALS_HINT = (
    "Provide AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(plus AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE for a profile in "
    "~/.aws/config (aws configure, aws sso login); renew them if they expired."
)
# An AWS message can carry a whole HTML page: keep the line readable.
_MAX_REASON = 300


def is_aws_error(error: BaseException) -> bool:
    """Whether ``error`` is one botocore raises (for an AWS call or its setup)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return isinstance(error, (BotoCoreError, ClientError, ResponseParserError))


def aws_error_code(error: BaseException) -> str | None:
    """AWS's error code of a ``ClientError`` (``AuthFailure``, ``NoSuchKey``...), else None."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def aws_error(
    error: BaseException,
    *,
    call: str | None = None,
    region: str | None = None,
    bucket: str | None = None,
    doing: str | None = None,
) -> MaptError:
    """The ``MaptError`` for a botocore failure of ``call`` in ``region`` (or on ``bucket``).

    What the caller leaves out is taken from the failed client call where botocore
    shows it (the operation name, the client's region, the ``Bucket`` parameter).
    ``doing`` (``cannot take the project lock s3://b/k``) leads the message, for a
    caller that knows what the call was for; the class and hint stay AWS's verdict.
    """
    verdict = _verdict(error, call=call, region=region, bucket=bucket)
    if doing is None or verdict is error:
        return verdict
    return type(verdict)(f"{doing}: {verdict.message}", hint=verdict.hint)


def _verdict(
    error: BaseException, *, call: str | None, region: str | None, bucket: str | None
) -> MaptError:
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectionError,
        InvalidRegionError,
        NoRegionError,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError

    if isinstance(error, MaptError):
        return error
    found = _failed_call(error)
    call = call or getattr(error, "operation_name", None) or found.get("call")
    region = region or found.get("region")
    bucket = bucket or found.get("bucket")
    where = _where(call, region, bucket)

    if isinstance(error, ClientError):
        code = aws_error_code(error) or "Unknown"
        message = str(error.response.get("Error", {}).get("Message") or error)
        reason = f"{code}: {message}"
        if code in CREDENTIAL_ERROR_CODES:
            return PrerequisiteError(
                f"{where} was refused: the AWS credentials are not valid ({_line(reason)})",
                hint=CREDENTIALS_HINT,
            )
        if _throttled(error):
            return OperationError(
                f"{where} was throttled by AWS after botocore's retries ({_line(reason)})",
                hint="Retry later, or make fewer calls at once (fewer parallel runs).",
            )
        hint = None
        if code in PERMISSION_ERROR_CODES:
            hint = "Check the permissions of the AWS identity in use."
        return OperationError(f"{where} failed: {_line(reason)}", hint=hint)
    if _credential_failure(error):
        return PrerequisiteError(
            f"{where} failed: no usable AWS credentials ({_line(str(error))})",
            hint=CREDENTIALS_HINT,
        )
    if isinstance(error, InvalidRegionError):
        name = getattr(error, "kwargs", {}).get("region_name", region)
        return InputError(f"{name!r} is not a valid AWS region name", hint="Pass --region NAME.")
    if isinstance(error, NoRegionError):
        return InputError(
            f"no AWS region for {call or 'an AWS call'}",
            hint="Pass --region, or set AWS_REGION.",
        )
    if isinstance(error, (ConnectionError, ReadTimeoutError, ConnectionClosedError)):
        details = getattr(error, "kwargs", {})
        endpoint = details.get("endpoint_url")
        target = f" at {endpoint}" if endpoint else ""
        cause = details.get("error") if endpoint else None
        return OperationError(
            f"{where} failed: AWS could not be reached{target} ({_line(str(cause or error))})",
            hint="Check the network, a proxy (HTTPS_PROXY) or AWS_ENDPOINT_URL, then retry.",
        )
    if isinstance(error, ResponseParserError):
        return OperationError(
            f"{where} failed: AWS's answer could not be parsed ({_line(str(error))})",
            hint="Retry later; an endpoint set with AWS_ENDPOINT_URL may not serve this call.",
        )
    return OperationError(f"{where} failed: {_line(str(error))}")


@contextmanager
def translating_aws_errors(
    call: str | None = None,
    *,
    region: str | None = None,
    bucket: str | None = None,
    doing: str | None = None,
) -> Iterator[None]:
    """Within the block, a botocore failure is raised as its ``MaptError`` (see ``aws_error``)."""
    try:
        yield
    except MaptError:
        raise
    except Exception as error:
        if not is_aws_error(error):
            raise
        raise aws_error(error, call=call, region=region, bucket=bucket, doing=doing) from error


def _throttled(error: Any) -> bool:
    """botocore's own verdict: is the error code one of its throttling codes?"""
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

    context = RetryContext(attempt_number=1, parsed_response=error.response)
    return bool(ThrottledRetryableChecker().is_retryable(context))


def _credential_failure(error: BaseException) -> bool:
    """Whether ``error`` is one of botocore's credential-chain failures."""
    return any(
        cls.__module__.startswith("botocore") and cls.__name__ in _CREDENTIAL_EXCEPTIONS
        for cls in type(error).__mro__
    )


def _failed_call(error: BaseException) -> dict[str, str]:
    """Operation, region and bucket of the botocore client call ``error`` came out of."""
    found: dict[str, str] = {}
    for frame, _ in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_name != "_make_api_call":
            continue
        operation = frame.f_locals.get("operation_name")
        client = frame.f_locals.get("self")
        params = frame.f_locals.get("api_params")
        if isinstance(operation, str):
            found["call"] = operation
        region = getattr(getattr(client, "meta", None), "region_name", None)
        if isinstance(region, str):
            found["region"] = region
        if isinstance(params, dict) and isinstance(params.get("Bucket"), str):
            found["bucket"] = params["Bucket"]
    return found


def _where(call: str | None, region: str | None, bucket: str | None) -> str:
    """``AWS DescribeRegions in us-east-1`` / ``AWS PutObject on s3://b``."""
    text = f"AWS {call}" if call else "an AWS call"
    if bucket:
        text += f" on s3://{bucket}"
    if region:
        text += f" in {region}"
    return text


def _line(text: str) -> str:
    """``text`` on one line, redacted, at most ``_MAX_REASON`` characters."""
    line = redact(" ".join(text.split()))
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."
