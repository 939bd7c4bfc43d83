"""Initial sweep schema: sites, sweeps, sweep_changes, baselines.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "sweeps",
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
        sa.Column("changes", sa.Integer, nullable=False),
        sa.Column("top_level", sa.String(10), nullable=True),
        sa.Column("previous_sweep_id", sa.Integer, sa.ForeignKey("sweeps.id"), nullable=True),
        sa.Column("result", _json, nullable=False),
    )
    op.create_index("ix_sweeps_site_finished", "sweeps", ["site_id", "finished_at"])
    op.create_table(
        "sweep_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sweep_id", sa.Integer, sa.ForeignKey("sweeps.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("identity", sa.String(80), nullable=False),
        sa.Column("suppressed", sa.Boolean, nullable=False),
        sa.Column("detail", _json, nullable=False),
    )
    op.create_index("ix_sweep_changes_sweep", "sweep_changes", ["sweep_id"])
    op.create_table(
        "baselines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site_id", sa.Integer, sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("sweep_id", sa.Integer, sa.ForeignKey("sweeps.id"), nullable=False),
        sa.Column("accepted_at", sa.Double, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_baselines_site", "baselines", ["site_id", "accepted_at"])


def downgrade() -> None:
    op.drop_table("baselines")
    op.drop_table("sweep_changes")
    op.drop_table("sweeps")
    op.drop_table("sites")
