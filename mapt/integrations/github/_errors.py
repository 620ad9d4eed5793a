"""The errors GitHub's REST API can cause, as ``MaptError`` subclasses.

They are ``OperationError`` (exit code 1): a request was made and failed. The class
says what kind of failure it was, so a caller such as ``destroy`` can tell "the runner
could not be removed because the token is wrong" from "GitHub could not be reached",
and each message is one line that names the scope or URL and never a token.
"""

from __future__ import annotations

from mapt.core import OperationError, redact


class GitHubApiError(OperationError):
    """A GitHub REST API call failed; ``status`` is the HTTP status, if there was one."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None):
        # Redact again here: whatever built the message, a registered token never leaves.
        super().__init__(redact(message), hint=redact(hint) if hint else None)
        self.status = status


class GitHubCredentialsError(GitHubApiError):
    """GitHub rejected the credentials themselves (HTTP 401): a wrong or expired token or key."""


class GitHubPermissionError(GitHubApiError):
    """The repository or organization is unknown, or the credentials may not manage runners.

    GitHub answers 404 rather than 403 when a token may not even see a private
    repository, so the two cannot be told apart and share this class.
    """


class GitHubUnreachableError(GitHubApiError):
    """No HTTP answer at all: DNS, connection, TLS or timeout failure."""
