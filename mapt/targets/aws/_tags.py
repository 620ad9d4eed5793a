"""The ``mapt:*`` tags on AWS resources and the timestamps they hold.

The tags are how mapt finds its resources again without state: the host program
writes them (``_base``), ``mapt aws sweep`` reads them (``_sweep``). Both sides use
this module, which imports neither Pulumi nor boto3, so the format cannot drift.
"""

from __future__ import annotations

from datetime import datetime, timezone

TAG_PROJECT = "mapt:project"
TAG_STACK = "mapt:stack"
TAG_CREATED_AT = "mapt:created-at"
TAG_EXPIRES_AT = "mapt:expires-at"

# UTC, whole seconds, "Z": the form AWS takes for an Auto Scaling schedule's start
# time, and the RFC 3339 form ``time.Static`` writes for ``mapt:created-at``.
_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


def utc_timestamp(moment: datetime) -> str:
    """``moment`` (timezone-aware) as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no timezone: mapt's timestamps are UTC")
    return moment.astimezone(timezone.utc).strftime(_TIMESTAMP)


def parse_timestamp(text: str) -> datetime | None:
    """The time in a timestamp tag (RFC 3339, ``Z`` or an offset); None if it is not one.

    A tag anyone can edit is read defensively: a value that is not a timestamp, or
    has no timezone, is treated as absent rather than guessed at.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(timezone.utc)
