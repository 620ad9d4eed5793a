"""``aws_error``: botocore failures as one-line MaptErrors with the documented exit codes."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    PartialCredentialsError,
    ReadTimeoutError,
    UnauthorizedSSOTokenError,
)
from botocore.parsers import ResponseParserError
from botocore.stub import Stubber

from mapt.core import (
    InputError,
    MaptError,
    OperationError,
    PrerequisiteError,
    aws_error,
    translating_aws_errors,
)


def stubbed_failure(code: str, message: str, status: int = 400) -> ClientError:
    """The ClientError a real EC2 client raises for an error answer (no retries: stubbed)."""
    client = boto3.client(
        "ec2", region_name="eu-north-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_client_error("describe_regions", code, message, http_status_code=status)
        with pytest.raises(ClientError) as caught:
            client.describe_regions()
    return caught.value


def test_the_call_and_region_come_from_the_failed_client_call() -> None:
    error = aws_error(stubbed_failure("InternalError", "An internal error has occurred"))
    assert type(error) is OperationError
    assert error.message == (
        "AWS DescribeRegions in eu-north-1 failed: InternalError: An internal error has occurred"
    )


@pytest.mark.parametrize(
    "code",
    ["AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
     "ExpiredTokenException", "SignatureDoesNotMatch"],
)  # fmt: skip
def test_credential_codes_are_prerequisite_errors_with_a_hint(code: str) -> None:
    error = aws_error(stubbed_failure(code, "nope"))
    assert isinstance(error, PrerequisiteError) and error.exit_code == 5
    assert code in error.message and "AWS_ACCESS_KEY_ID" in (error.hint or "")


def test_throttling_after_the_retries_is_an_operation_error_that_says_so() -> None:
    error = aws_error(stubbed_failure("RequestLimitExceeded", "Request limit exceeded.", 503))
    assert type(error) is OperationError and error.exit_code == 1
    assert "throttled" in error.message and "RequestLimitExceeded" in error.message


@pytest.mark.parametrize(
    "raised",
    [
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        UnauthorizedSSOTokenError(),
    ],
)
def test_credential_chain_failures_are_prerequisite_errors(raised: Exception) -> None:
    error = aws_error(raised, call="DescribeRegions", region="us-east-1")
    assert isinstance(error, PrerequisiteError)
    assert error.message.startswith("AWS DescribeRegions in us-east-1 failed: no usable")


@pytest.mark.parametrize(
    "raised",
    [
        EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com/"),
        ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com/", error="timed out"),
    ],
)
def test_unreachable_endpoints_are_operation_errors_naming_them(raised: Exception) -> None:
    error = aws_error(raised, call="DescribeRegions", region="us-east-1")
    assert type(error) is OperationError
    assert "could not be reached at https://ec2.us-east-1.amazonaws.com/" in error.message


def test_an_unparseable_answer_is_one_short_line() -> None:
    page = "<!doctype html>\n<html>\n" + "<p>Internal Server Error</p>\n" * 50
    error = aws_error(ResponseParserError(f"Unable to parse response: {page}"), bucket="ci-state")
    assert "\n" not in str(error) and len(error.message) < 400
    assert error.message.startswith("an AWS call on s3://ci-state failed: AWS's answer could not")


def test_the_context_manager_translates_aws_errors_only() -> None:
    # A MaptError passes unchanged; a non-AWS error is a bug, left alone.
    with pytest.raises(InputError), translating_aws_errors("DescribeRegions"):
        raise InputError("bad")
    with pytest.raises(KeyError), translating_aws_errors("DescribeRegions"):
        raise KeyError("Regions")
    with (
        pytest.raises(MaptError) as caught,
        translating_aws_errors("GetObject", bucket="ci-state"),
    ):
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com/")
    assert caught.value.message.startswith("AWS GetObject on s3://ci-state failed")
    assert isinstance(caught.value.__cause__, EndpointConnectionError)
