"""moto's DescribeInstanceTypes answers, serialized once per process and request.

moto's instance types are a fixed catalogue (``moto.ec2.models.instance_types``: one
class-level list, the same in every region and account, which no call changes), yet
moto serializes its answer afresh on every call, walking the botocore shape of each
attribute of each type: about 1.6 s of CPU for the ~970 x86_64 types mapt lists to name
the nearest sizes of a shape that does not exist, 60 ms for a shape's few dozen. That
was an eighth of the CPU of the allocation, targets and hosts tests (132 calls).

``serialize_instance_types_once()`` keeps each serialized answer by the request's
parameters (action, version, filters, names, page token) and region, and gives it back
for the same request again. moto still parses the request and runs its own filters
each time (so an unknown filter or type is still its error, never kept), the response
headers (date) are made afresh, and moto adds a new request id to the body after this
step, as before: a client sees what moto would have answered.
"""

from __future__ import annotations

import functools
from typing import Any

_CACHED_ACTIONS = frozenset({"DescribeInstanceTypes"})


def serialize_instance_types_once() -> None:
    """Install the cache (once per process; every ``mock_aws`` block then uses it)."""
    from moto.core.responses import BaseResponse

    original = BaseResponse.serialized
    if getattr(original, "cached_instance_types", False):
        return
    answers: dict[tuple[Any, ...], tuple[int, dict[str, Any], Any]] = {}

    @functools.wraps(original)
    def serialized(self: BaseResponse, action_result: Any) -> Any:
        action = self._get_action()
        if action not in _CACHED_ACTIONS or isinstance(action_result.result, Exception):
            return original(self, action_result)
        key = (
            action,
            getattr(self, "region", None),
            tuple(sorted((name, tuple(values)) for name, values in self.querystring.items())),
        )
        if key not in answers:
            status, headers, body = original(self, action_result)
            own = {k: v for k, v in headers.items() if k not in self.response_headers}
            answers[key] = (status, own, body)
        status, own, body = answers[key]
        return status, {**own, **self.response_headers}, body

    serialized.cached_instance_types = True  # type: ignore[attr-defined]
    BaseResponse.serialized = serialized  # type: ignore[method-assign]
