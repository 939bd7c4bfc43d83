"""Scheduled sweeps: history, semantic diffs, baselines and alerts (``camsweep sweep|history|diff|baseline``).

    store.py      SQLite (default) or PostgreSQL through SQLAlchemy; Alembic migrations on open
    tables.py     the schema; migrations/ builds it
    diff.py       what changed between two result documents (CHANGE_KINDS: kinds and alert levels)
    alerts.py     webhook delivery from a background thread, retries with backoff, bounded time
    schedule.py   --every / --cron
    commands.py   the command bodies
"""
