"""In-process moto made safe for the threads mapt calls it from.

AWS answers concurrent calls; moto's in-process backends are not all safe to call from
several threads at once, and mapt does call from several (the sweep and the allocation
query regions in parallel, a project lock renews from its own thread, an S3 backend's
checkpoints are read in parallel). Two races were seen under load:

- EC2: ``DescribeKeyPairs`` adds an entry to ``RESPONSE_KEY_PATH_TO_TRANSFORMER``
  (``_include_in_response`` / ``_exclude_from_response``), a dict on the class shared by
  every EC2 response, while another thread serializes a ``DescribeInstances`` answer
  iterating it: ``RuntimeError: dictionary changed size during iteration``. Fixed by
  giving the response that asks its own copy (each request has its own response
  object), which is also what the setting means: for this answer only.
- S3: ``PutObject`` over an existing key closes the old key's buffer
  (``_VersionedKeyStore.setlist`` disposes it) while a ``GetObject`` in another thread
  still reads it: ``ValueError: I/O operation on closed file``. Fixed by letting S3
  requests that change objects (any method but GET and HEAD) run alone, while reads
  still run together (a dry run reads 200 checkpoints in parallel, and tests count
  those rounds).

Those are moto's races, not mapt's: on AWS each of those calls is atomic.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit


class _ReadWriteLock:
    """Many readers at once, or one writer alone."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._writing and not self._readers)
            self._writing = True
        try:
            yield
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()


_S3_OBJECTS = _ReadWriteLock()


def _is_s3(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host.startswith("s3") or ".s3" in host


def serialize_in_process_moto() -> None:
    """Install both fixes (once per process; ``mock_aws`` blocks then all have them)."""
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.core.responses import BaseResponse

    original = BotocoreStubber.process_request
    if getattr(original, "thread_safe", False):
        return

    @functools.wraps(original)
    def process_request(self: BotocoreStubber, request: Any) -> Any:
        if not _is_s3(str(request.url)):
            return original(self, request)
        reads = str(request.method).upper() in ("GET", "HEAD")
        with _S3_OBJECTS.reading() if reads else _S3_OBJECTS.writing():
            return original(self, request)

    process_request.thread_safe = True  # type: ignore[attr-defined]
    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]

    def transform_for_this_answer(self: BaseResponse, path: str, transform: Any) -> None:
        self.RESPONSE_KEY_PATH_TO_TRANSFORMER = {  # type: ignore[attr-defined]
            **getattr(self, "RESPONSE_KEY_PATH_TO_TRANSFORMER", {}),
            path: transform,
        }

    from moto.core.serialize import never_return

    BaseResponse._include_in_response = (  # type: ignore[method-assign]
        lambda self, path: transform_for_this_answer(self, path, lambda value: value)
    )
    BaseResponse._exclude_from_response = (  # type: ignore[method-assign]
        lambda self, path: transform_for_this_answer(self, path, never_return)
    )
