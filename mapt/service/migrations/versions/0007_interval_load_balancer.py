"""Whether a host interval's spot host sat behind its load balancer.

A spot host with a name of its own (``dns_zone``) has none, so its list-priced
resources differ (specs/features/stable-names.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("host_intervals") as batch:
        # Intervals recorded before this revision stay NULL: every spot host then had
        # its load balancer, which is how they are read.
        batch.add_column(sa.Column("load_balancer", sa.Boolean, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("host_intervals") as batch:
        batch.drop_column("load_balancer")
