"""The reconciler: a leader-only loop that compares managed hosts with AWS and recovers them.

Every ``RecoveryPolicy.interval`` seconds the leader asks, for each RUNNING host, the
library whether its machine still runs (``AwsHostTarget.health``: the instance's
state; for a spot host, its Auto Scaling group's instances). A host whose machine is
gone moves RUNNING -> ERROR with the reason, and in the same transaction a
``hosts.recover`` execution is submitted for it. That execution re-deploys the host
through the create path (Pulumi ``up`` with refresh, the kept spot choice first, the
next candidate when that place cannot launch); it ends ERROR -> RUNNING, or
ERROR -> ERROR keeping the reason. A failed attempt is followed by another after a
backoff that doubles (``backoff``, ``2 * backoff``, ... at most ``backoff_max``) until
``attempts`` were made; then the host stays ERROR for a person to delete or look at.
A failed replacement of an interrupted host (``hosts.replace``) is followed by the
same recovery attempts.

What the health check cannot answer (AWS unreachable, state unreadable) is logged and
asked again at the next pass: unknown is never taken for a dead host.

Attempts are counted in the recovery executions themselves (their arguments carry the
attempt number, their ``finished_at`` the time the backoff runs from), so the schema
does not change. Recoveries of one host never overlap: executions on one target are
serialized, and a new attempt is submitted only once the previous one has finished and
while the host still names it as its execution.

Each pass first settles the hosts whose execution ended without settling them
(``Hosts.settle_abandoned``): the cancel route and the dispatcher do so as they end such
executions, and a server that died between the two writes left them busy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from mapt.core import MaptError, get_logger
from mapt.service._executions import Executions, ExecutionStatus
from mapt.service._hosts import RECOVER, REPLACE, Hosts, ManagedHost
from mapt.service._leader import LeaderContext, LeaderTask
from mapt.service._states import HostState

if TYPE_CHECKING:
    from mapt.hosts import AwsHostTarget

_log = get_logger(__name__)


@dataclass(frozen=True)
class RecoveryPolicy:
    """How often hosts are checked, and how recovery retries (seconds, a count)."""

    interval: float = 60.0
    attempts: int = 3
    backoff: float = 30.0
    backoff_max: float = 900.0

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"the reconcile interval {self.interval} must be > 0")
        if self.attempts < 1:
            raise ValueError(f"recovery attempts {self.attempts} must be at least 1")
        if self.backoff < 0 or self.backoff_max < self.backoff:
            raise ValueError("the recovery backoff must be >= 0 and at most its maximum")

    def delay(self, failed: int) -> float:
        """The wait after ``failed`` failed attempts before the next one."""
        return float(min(self.backoff * 2 ** (failed - 1), self.backoff_max))


def reconciler_task(policy: RecoveryPolicy) -> LeaderTask:
    """The reconciler as a leader-only task, run every ``policy.interval`` seconds."""
    return LeaderTask("reconciler", policy.interval, functools.partial(reconcile, policy=policy))


def reconcile(context: LeaderContext, *, policy: RecoveryPolicy) -> None:
    """One pass: settle hosts whose execution ended without settling them (a server died
    between the two: ``Hosts.settle_abandoned``), detect failed RUNNING hosts, retry the
    recovery of ERROR ones when due."""
    from mapt.hosts import AwsHostTarget

    executions = Executions(context.database)
    store = Hosts(context.database, executions)
    target = AwsHostTarget(context.services)
    submitted = bool(store.settle_abandoned())
    for host in store.find():
        if not context.leading():
            break
        if host.state is HostState.RUNNING:
            reason = _failure(target, host)
            if reason is not None and store.detect_failure(host.name, reason, policy.attempts):
                _log.warning("host %s failed: %s; recovering it", host.name, reason)
                submitted = True
        elif (
            host.state is HostState.ERROR
            and _retry_due(executions, host, policy)
            and store.retry_recovery(host, policy.attempts)
        ):
            _log.warning("host %s: recovery retried after its backoff", host.name)
            submitted = True
    if submitted:
        context.submitted()


def _failure(target: AwsHostTarget, host: ManagedHost) -> str | None:
    """Why the host's machine no longer runs, or None (healthy, or unknown for now)."""
    backend = host.fields.get("backed_url")
    try:
        health = target.health(host.name, None if backend is None else str(backend))
    except MaptError as error:
        _log.warning("health of host %s is unknown for now: %s", host.name, error)
        return None
    return None if health.healthy else str(health.reason)


def _retry_due(executions: Executions, host: ManagedHost, policy: RecoveryPolicy) -> bool:
    """Whether the host's last recovery failed, has attempts left, and waited its backoff."""
    if host.execution_id is None:
        return False
    last = executions.get(host.execution_id)
    if last.name not in (RECOVER, REPLACE) or last.status is not ExecutionStatus.FAILED:
        return False
    attempt = int(last.arguments.get("attempt", policy.attempts))
    if attempt >= policy.attempts or last.finished_at is None:
        return False
    due = last.finished_at + timedelta(seconds=policy.delay(attempt))
    return datetime.now(timezone.utc) >= due
