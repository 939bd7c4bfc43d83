"""Alembic migrations of the sweep database, run automatically by ``SweepStore.open``."""
