"""Host events: the AWS events heard about managed hosts (interruptions, rebalance
recommendations, state changes), one row per EventBridge event id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mapt.service._schema import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("pool", sa.String(48), nullable=True),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("zone", sa.String(32), nullable=True),
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("instance_state", sa.String(16), nullable=True),
        sa.Column("event_time", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    op.create_index("host_events_by_host", "host_events", ["host", "event_time"])
    op.create_index("host_events_by_pool", "host_events", ["pool", "event_time"])


def downgrade() -> None:
    op.drop_index("host_events_by_pool", table_name="host_events")
    op.drop_index("host_events_by_host", table_name="host_events")
    op.drop_table("host_events")
