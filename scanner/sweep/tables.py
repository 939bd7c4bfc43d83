"""The sweep database schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` build it.

Rows are only ever inserted: a sweep keeps its full result document, a new baseline is a new
row (the newest one of a site is in force), so history is never overwritten.

    sites          one row per premises (``--site``)
    sweeps         one row per finished sweep: summary counts + the full result document
    sweep_changes  the changes of a sweep against the site's previous sweep (what was alerted)
    baselines      "this sweep's state is accepted" marks, newest per site in force

Times are epoch seconds (double), like the result document.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

METADATA = sa.MetaData()

# JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

sites = sa.Table(
    "sites",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.Double, nullable=False),
)

sweeps = sa.Table(
    "sweeps",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("site_id", sa.Integer, sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double, nullable=False),
    sa.Column("targets", sa.Text, nullable=False),
    sa.Column("listen_seconds", sa.Double, nullable=False),
    sa.Column("tool_version", sa.String(40), nullable=False),
    sa.Column("devices", sa.Integer, nullable=False),
    sa.Column("cameras", sa.Integer, nullable=False),
    sa.Column("face_capable", sa.Integer, nullable=False),
    sa.Column("clouds", sa.Integer, nullable=False),
    sa.Column("findings", sa.Integer, nullable=False),
    sa.Column("changes", sa.Integer, nullable=False),  # not suppressed (not back to a known state)
    sa.Column("top_level", sa.String(10), nullable=True),  # the most serious of those changes
    sa.Column("previous_sweep_id", sa.Integer, sa.ForeignKey("sweeps.id"), nullable=True),
    sa.Column("result", JsonDocument, nullable=False),
    sa.Index("ix_sweeps_site_finished", "site_id", "finished_at"),
)

sweep_changes = sa.Table(
    "sweep_changes",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sweep_id", sa.Integer, sa.ForeignKey("sweeps.id"), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("identity", sa.String(80), nullable=False),
    sa.Column("suppressed", sa.Boolean, nullable=False),
    sa.Column("detail", JsonDocument, nullable=False),
    sa.Index("ix_sweep_changes_sweep", "sweep_id"),
)

baselines = sa.Table(
    "baselines",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("site_id", sa.Integer, sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("sweep_id", sa.Integer, sa.ForeignKey("sweeps.id"), nullable=False),
    sa.Column("accepted_at", sa.Double, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Index("ix_baselines_site", "site_id", "accepted_at"),
)
