"""Alembic's environment: migrations run on the connection ``mapt.service`` hands in.

They are never run by hand: ``mapt.service._database.migrate`` calls
``alembic.command.upgrade`` with ``config.attributes["connection"]`` set, inside a
transaction that also holds the migration lock.
"""

from __future__ import annotations

from alembic import context

from mapt.service._schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
