"""The host services of the test server, as its worker processes unpickle them.

Every execution's job carries the server's services, so every worker process imports
this module, whatever it runs: it imports nothing heavy (no Pulumi, no moto), and the
file-backed engine (``tests.harness.service_hosts``, on Pulumi's mocks) loads only in a
worker that builds one. A ``test.sleep`` worker starts that much sooner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapt.hosts import HostServices

if TYPE_CHECKING:
    from tests.harness.service_hosts import FileBackedEngine

INSTANCE_ID = "i-0123456789abcdef0"


@dataclass(frozen=True)
class EngineFile:
    """An engine factory that workers unpickle: the file-backed engine on ``path``."""

    path: str

    def __call__(self, secrets_provider: str | None, debug: bool) -> FileBackedEngine:
        from tests.harness.service_hosts import FileBackedEngine

        return FileBackedEngine(Path(self.path))


def _ready(access: Any) -> None:
    """The host answers at once (no SSH server behind the simulated address)."""


def _launched(region: str, group_name: str) -> str:
    return INSTANCE_ID


def _configured(access: Any, request: Any, outputs: Any) -> Any:
    from mapt.targets.aws import HostSetup

    return HostSetup(INSTANCE_ID)


def _running(status: Any) -> Any:
    """The simulated machine runs as long as its stacks do (AWS lives in the workers)."""
    from mapt.targets.aws import HostHealth

    return HostHealth(True, instance=INSTANCE_ID)


def simulated_services(engine_file: Path) -> HostServices:
    """The host services of the test server and its workers (picklable)."""
    return HostServices(
        engine=EngineFile(str(engine_file)),
        readiness=_ready,
        launch=_launched,
        setup=_configured,
        health=_running,
    )
