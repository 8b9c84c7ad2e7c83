"""Schema 4: pipelines as graphs of steps (definitions with versions, run kind and inputs, a step's pipeline
step id, fan-out index, dependencies and idempotency key).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pipelines", sa.Column("definition", sa.JSON()))
    op.add_column("pipelines", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "pipeline_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("pipeline_id", sa.String(32), sa.ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pipeline_versions_pipeline_id", "pipeline_versions", ["pipeline_id"])
    op.add_column("runs", sa.Column("kind", sa.String(20), nullable=False, server_default="video"))
    op.add_column("runs", sa.Column("inputs", sa.JSON()))
    op.add_column("runs", sa.Column("pipeline_version", sa.Integer()))
    op.add_column("steps", sa.Column("kind", sa.String(30)))
    op.add_column("steps", sa.Column("pipeline_step", sa.String(100)))
    op.add_column("steps", sa.Column("fan_index", sa.Integer()))
    op.add_column("steps", sa.Column("depends_on", sa.JSON()))
    op.add_column("steps", sa.Column("idempotency_key", sa.String(64)))
    op.create_index("ix_steps_idempotency_key", "steps", ["idempotency_key"])


def downgrade() -> None:
    raise NotImplementedError("reelflow does not downgrade a store: restore the copy made before the upgrade")
