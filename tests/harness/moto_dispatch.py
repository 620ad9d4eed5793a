"""moto_server's per-request lookups, made once: the same answers, without the CPU.

For every request moto's server lists its own package folder to tell a service's
host name (``moto.backends.list_of_moto_modules``, a directory scan with an ``isdir``
per entry) and lists the response class's methods with ``inspect.getmembers`` to
find the action (``moto.core.utils.method_names_from_class``). Neither answer changes
while the server runs; together they were about 15% of the sandbox moto_server's CPU
(py-spy, 2026-12-02, moto 5.2.5). ``cache_dispatch_lookups()`` keeps each answer after its first
computation. Used by the harness's moto_server scripts (``moto_reset.py``, ``sandbox_moto.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable


def cache_dispatch_lookups() -> None:
    """Compute moto's module list once, and each response class's method names once."""
    from moto import backends
    from moto.core import responses, utils

    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterable[str]:
        return modules

    backends.list_of_moto_modules = list_of_moto_modules
    # ``responses`` imported the function by name; its callers get a fresh list each
    # time and only read it, so one list per class serves them all.
    responses.method_names_from_class = functools.cache(  # type: ignore[attr-defined]
        utils.method_names_from_class
    )
