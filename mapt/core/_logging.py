"""Logging for every layer: one ``mapt`` logger tree writing to stderr, secrets redacted.

Logs go to stderr so stdout stays free for results (``--output json``). Values
registered with ``register_secret`` (keys, passwords, tokens) are replaced by ``***``
in every record, message and traceback, that reaches mapt's handler (or the service's,
which uses the same ``RedactingFilter``), whichever layer logged it, and so is the
password of any URL (``scheme://user:password@host``: a database, a server, a backend's
endpoint), which is no registered secret (``without_password``).
"""

from __future__ import annotations

import logging
import re
import sys
import threading

ROOT_LOGGER = "mapt"
_HANDLER_NAME = "mapt"
_MASK = "***"
# Shorter values would mask ordinary words in unrelated messages.
_MIN_SECRET_LENGTH = 4
# A URL's scheme (mistyped, even missing) and authority: up to its path, query or
# fragment, or a quote or space.
_URL_AUTHORITY = re.compile(r"(?P<scheme>(?:[A-Za-z][A-Za-z0-9+.-]*)?://)(?P<authority>[^/?#\s'\"]*)")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it would appear in mapt's log output from now on."""
    if len(value) >= _MIN_SECRET_LENGTH:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret, and every URL's password, replaced
    by ``***``."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return without_password(text)


def without_password(text: str) -> str:
    """``text`` with the password of every URL's user info replaced by ``***``.

    ``mysql://u:s3cret@h/db`` becomes ``mysql://u:***@h/db``. The user info ends at the
    authority's last ``@``, as ``urllib`` splits it, so a password with an unescaped
    ``@`` is masked whole.
    """

    def mask(match: re.Match[str]) -> str:
        authority = match.group("authority")
        user_info, at, host = authority.rpartition("@")
        user, colon, _ = user_info.partition(":")
        if not at or not colon:
            return match.group(0)
        return f"{match.group('scheme')}{user}:{_MASK}@{host}"

    return _URL_AUTHORITY.sub(mask, text)


# Formats a record's traceback as every formatter mapt uses would (the default way).
_TRACEBACKS = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Masks the registered secrets in a record's message and traceback, before a
    handler formats them.

    The traceback is formatted here, into ``exc_text``, which a formatter prints
    instead of formatting ``exc_info`` again: an exception's text (a failed command's
    transcript, a bug's ``KeyError``) holds secrets as often as a message does.
    A message that cannot be formatted (arguments that do not match its ``%``
    placeholders, one whose ``__str__`` raises) is left as it is: a filter runs
    outside ``logging``'s error handling, so raising here would stop the caller (a
    destroy, a lock's release); the handler's own formatting fails again inside
    ``emit``, where ``logging`` reports it ("--- Logging error ---") and goes on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg, record.args = redact(message), None
        return True


class InterruptsPass(logging.Handler):
    """A handler whose failures are reported, except a signal's stop, which is raised.

    ``logging`` catches whatever ``emit`` raises and hands it to ``handleError``; a
    SIGINT that lands while a line is written would otherwise be lost.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        from mapt.core._interrupt import raise_if_interrupted

        raise_if_interrupted()
        super().handleError(record)


class _PlainHandler(InterruptsPass, logging.StreamHandler):  # type: ignore[type-arg]
    """One plain line per record on stderr (CI logs)."""


def get_logger(name: str) -> logging.Logger:
    """The logger for a mapt module (pass ``__name__``)."""
    if name != ROOT_LOGGER and not name.startswith(ROOT_LOGGER + "."):
        name = f"{ROOT_LOGGER}.{name}"
    return logging.getLogger(name)


def configure_logging(debug: bool = False) -> None:
    """Send mapt's logs to stderr: rich on a terminal, one plain line per record in CI.

    Calling it again replaces mapt's handler, so it follows the current ``sys.stderr``
    (which a test runner or an embedding program may have swapped).
    """
    logger = logging.getLogger(ROOT_LOGGER)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        class _RichHandler(InterruptsPass, RichHandler):
            """Rich's handler, letting a signal's stop through."""

        handler = _RichHandler(console=Console(stderr=True), show_path=False)
    else:
        handler = _PlainHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mapt: %(levelname)s: %(message)s"))
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.propagate = False
