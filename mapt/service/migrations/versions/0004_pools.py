"""Pools of warm hosts, their leases, and the pool a host belongs to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mapt.service._schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pools",
        sa.Column("name", sa.String(48), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("target", sa.Integer, nullable=False),
        sa.Column("minimum", sa.Integer, nullable=False),
        sa.Column("maximum", sa.Integer, nullable=False),
        sa.Column("host", sa.JSON, nullable=False),
        sa.Column("template", sa.Integer, nullable=False),
        sa.Column("strategy", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("pool", sa.String(48), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("ended_at", UtcDateTime, nullable=True),
    )
    op.create_index("leases_by_pool", "leases", ["pool", "state"])
    op.create_index(
        "leases_one_active_per_host",
        "leases",
        ["host"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("pool", sa.String(48), nullable=True))
        batch.add_column(sa.Column("template", sa.Integer, nullable=True))
        batch.add_column(
            sa.Column("recycle", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.create_index("hosts_by_pool", ["pool"])


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_index("hosts_by_pool")
        batch.drop_column("recycle")
        batch.drop_column("template")
        batch.drop_column("pool")
    op.drop_index("leases_one_active_per_host", table_name="leases")
    op.drop_index("leases_by_pool", table_name="leases")
    op.drop_table("leases")
    op.drop_table("pools")
