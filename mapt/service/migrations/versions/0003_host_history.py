"""Host history: the intervals each host ran in one place, which costs are priced from.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mapt.service._schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "host_intervals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("pool", sa.String(64), nullable=True),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("availability_zone", sa.String(32), nullable=False),
        sa.Column("instance_types", sa.JSON, nullable=False),
        sa.Column("spot", sa.Boolean, nullable=False),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("airgap", sa.Boolean, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("ended_at", UtcDateTime, nullable=True),
        sa.Column("start_reason", sa.String(16), nullable=False),
        sa.Column("end_reason", sa.String(16), nullable=True),
    )
    op.create_index("host_intervals_by_host", "host_intervals", ["host", "started_at"])
    op.create_index("host_intervals_by_pool", "host_intervals", ["pool", "started_at"])
    op.create_index(
        "host_intervals_one_open_per_host",
        "host_intervals",
        ["host"],
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("host_intervals")
