"""The service's tables: API tokens, executions, their log lines, hosts, host intervals,
pools, leases and the AWS events heard about hosts.

SQLAlchemy Core tables, the one description of the schema the code reads and writes;
the Alembic migrations in ``mapt/service/migrations`` build the same tables, and a test
checks that the migrated database matches this metadata.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back as an aware ``datetime``.

    SQLite keeps no time zone; PostgreSQL's ``timestamptz`` does. Both come back aware.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive timestamp {value!r}: the service stores UTC times only")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]
        return value.astimezone(timezone.utc)  # type: ignore[no-any-return]


metadata = sa.MetaData()

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    # The public part of a token (``mapt_<key_id>_<secret>``): finds the row to compare.
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("salt", sa.LargeBinary(32), nullable=False),
    sa.Column("secret_hash", sa.LargeBinary(64), nullable=False),
    sa.Column("read_only", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
    # A name is reused only once the token that had it is revoked.
    sa.Index(
        "api_tokens_active_name",
        "name",
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    ),
)

executions = sa.Table(
    "executions",
    metadata,
    # Claim order: the oldest pending execution first (a resumed one keeps its place).
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("target", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("arguments", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error_type", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("error_exit_code", sa.Integer, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    # Ownership of a running execution: the claim (one per attempt), its server and
    # worker process, and the heartbeat that says the worker is alive.
    sa.Column("claim", sa.String(40), nullable=True),
    sa.Column("server_id", sa.String(64), nullable=True),
    sa.Column("worker_pid", sa.Integer, nullable=True),
    sa.Column("heartbeat_at", UtcDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Index("executions_status_seq", "status", "seq"),
    sa.Index("executions_target", "target"),
    # The database itself keeps two operations on one target from running at once.
    sa.Index(
        "executions_one_running_per_target",
        "target",
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    ),
)

execution_logs = sa.Table(
    "execution_logs",
    metadata,
    sa.Column("line", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "execution_id",
        sa.String(40),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("execution_logs_by_execution", "execution_id", "line"),
)

hosts = sa.Table(
    "hosts",
    metadata,
    # The project name: one managed host per project (its stacks are named after it).
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    # The create fields as asked (secrets are never accepted over the API).
    sa.Column("fields", sa.JSON, nullable=False),
    # What the last create or update answered (``HostRecord.to_dict``: no secret).
    sa.Column("record", sa.JSON, nullable=True),
    sa.Column("error_type", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("error_exit_code", sa.Integer, nullable=True),
    sa.Column("execution_id", sa.String(40), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("deleted_at", UtcDateTime, nullable=True),
    # A pool's member: the pool, the template version it was made from, and whether
    # it is to be destroyed once idle (released under the "replace" strategy).
    sa.Column("pool", sa.String(48), nullable=True),
    sa.Column("template", sa.Integer, nullable=True),
    sa.Column("recycle", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Index("hosts_by_pool", "pool"),
)

pools = sa.Table(
    "pools",
    metadata,
    sa.Column("name", sa.String(48), primary_key=True),
    # ACTIVE, or DRAINING once deleted: its members go as they become idle.
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("target", sa.Integer, nullable=False),
    sa.Column("minimum", sa.Integer, nullable=False),
    sa.Column("maximum", sa.Integer, nullable=False),
    # The host request every member is created from (no name: members are named here).
    sa.Column("host", sa.JSON, nullable=False),
    # Bumped by each PATCH of the host template: members with an older one are replaced.
    sa.Column("template", sa.Integer, nullable=False),
    sa.Column("strategy", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("pool", sa.String(48), nullable=False),
    sa.Column("host", sa.String(64), nullable=False),
    sa.Column("holder", sa.String(128), nullable=False),
    # active, then released (returned) or expired (reclaimed past its ttl).
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime, nullable=True),
    # How it was served: at_once, after_wait or cold_start (None: before revision 0006).
    sa.Column("served", sa.String(16), nullable=True),
    sa.Index("leases_by_pool", "pool", "state"),
    # The database itself hands a member to one lease at a time, whichever server asks.
    sa.Index(
        "leases_one_active_per_host",
        "host",
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    ),
)

host_intervals = sa.Table(
    "host_intervals",
    metadata,
    # One row per stretch of time a host ran in one place on one capacity: created,
    # replaced (resize, recovery, interruption: the old row ends, a new one starts) and
    # deleted (the open row ends). Costs price these rows (``mapt.costs``).
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("host", sa.String(64), nullable=False),
    # The pool the host served in this interval (None: a host of its own).
    sa.Column("pool", sa.String(64), nullable=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("availability_zone", sa.String(32), nullable=False),
    # The types the placement could run (one when known): priced at the highest, the
    # basis of a spot bid that covers every type.
    sa.Column("instance_types", sa.JSON, nullable=False),
    sa.Column("spot", sa.Boolean, nullable=False),
    # The spot market's product (``Linux/UNIX``, ``Windows``, ...) and whether the host
    # is air-gapped (what it holds at list price: a load balancer, addresses, a NAT).
    sa.Column("product", sa.String(64), nullable=False),
    sa.Column("airgap", sa.Boolean, nullable=False),
    # Whether a spot host sat behind its network load balancer (a named one has none;
    # None: recorded before revision 0007, when every spot host had one).
    sa.Column("load_balancer", sa.Boolean, nullable=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime, nullable=True),
    # created, resized, recovered, interrupted / resized, recovered, interrupted, deleted.
    sa.Column("start_reason", sa.String(16), nullable=False),
    sa.Column("end_reason", sa.String(16), nullable=True),
    sa.Index("host_intervals_by_host", "host", "started_at"),
    sa.Index("host_intervals_by_pool", "pool", "started_at"),
    # At most one open interval per host: a host runs in one place at a time.
    sa.Index(
        "host_intervals_one_open_per_host",
        "host",
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    ),
)

host_events = sa.Table(
    "host_events",
    metadata,
    # EventBridge's event id: delivered at least once, recorded (and acted on) once.
    sa.Column("id", sa.String(64), primary_key=True),
    # interruption-warning, rebalance-recommendation or state-change (``HostEventKind``).
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("host", sa.String(64), nullable=False),
    # The pool the host served when the event came (None: a host of its own).
    sa.Column("pool", sa.String(48), nullable=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("zone", sa.String(32), nullable=True),
    sa.Column("instance_id", sa.String(32), nullable=False),
    # The interruption's instance-action (terminate, stop, hibernate) and, for a
    # state-change, the instance's new state.
    sa.Column("action", sa.String(16), nullable=True),
    sa.Column("instance_state", sa.String(16), nullable=True),
    sa.Column("event_time", UtcDateTime, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Index("host_events_by_host", "host", "event_time"),
    sa.Index("host_events_by_pool", "pool", "event_time"),
)
