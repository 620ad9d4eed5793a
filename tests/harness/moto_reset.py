"""moto's reset, without building every backend it is about to throw away.

``mock_aws`` resets moto when it starts and when it stops: ``BackendDict.reset`` first
resets each region's backend in place, which runs its ``__init__`` again (for EC2: a
default VPC, its subnets, security group, route table... in every region the test
touched, about seventeen), and then clears the dictionaries, so the next test builds
fresh ones on first use anyway. The rebuilt backends are never used: half the EC2
backends an in-process test built, and about a tenth of its CPU.

``discard_backends_on_reset()`` keeps what the reset is for: every dictionary is
cleared, and a backend that releases something in its own ``reset`` (S3 closes its
objects' temporary files) still runs it; only the generic rebuild is skipped. Run as
a script (``python moto_reset.py -H ... -p ...``, moto_server's own arguments) it serves
moto with it: the sandbox's moto_server resets before every test.
"""

from __future__ import annotations

from typing import Any


def discard_backends_on_reset() -> None:
    """Install the lighter reset (once per process; every ``mock_aws`` then uses it)."""
    from moto.core import base_backend
    from moto.core.base_backend import BackendDict, BaseBackend

    if getattr(BackendDict.reset, "discards", False):
        return

    def reset(cls: Any) -> None:
        with base_backend.backend_lock:
            for service in BackendDict._instances:
                for account in service.values():
                    for backend in account.values():
                        if type(backend).reset is not BaseBackend.reset:
                            backend.reset()  # it releases something of its own
                service.clear()

    reset.discards = True  # type: ignore[attr-defined]
    BackendDict.reset = classmethod(reset)  # type: ignore[method-assign, assignment]


if __name__ == "__main__":  # moto_server with the lighter reset (``/moto-api/reset``)
    import sys

    from tests.harness.moto_dispatch import cache_dispatch_lookups

    discard_backends_on_reset()
    cache_dispatch_lookups()
    from moto.server import main

    main(sys.argv[1:])
