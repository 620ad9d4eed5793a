"""Alembic migrations of the service's database, applied by ``open_database`` at start."""
