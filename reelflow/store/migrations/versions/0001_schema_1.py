"""Schema 1, the first store: pipelines, runs, steps, outputs, events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("pipeline_id", sa.String(32), sa.ForeignKey("pipelines.id", ondelete="SET NULL")),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("model_id", sa.String(100), nullable=False),
        sa.Column("backend", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("prefect_flow_run_id", sa.String(36)),
        sa.Column("error", sa.Text()),
        sa.Column("cost_usd", sa.Float()),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("started_at", _when()),
        sa.Column("finished_at", _when()),
    )
    for column in ("idempotency_key", "batch_id", "model_id", "status", "prefect_flow_run_id", "created_at"):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    op.create_table(
        "steps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("backend", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("provider_job_id", sa.String(200)),
        sa.Column("provider_endpoint", sa.String(500)),
        sa.Column("prefect_task_run_id", sa.String(36)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.Column("detail", sa.JSON()),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("finished_at", _when()),
    )
    op.create_index("ix_steps_run_id", "steps", ["run_id"])
    op.create_index("ix_steps_provider_job_id", "steps", ["provider_job_id"])
    op.create_table(
        "outputs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step_id", sa.Integer(), sa.ForeignKey("steps.id", ondelete="SET NULL")),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("path", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("fps", sa.Float()),
        sa.Column("frames", sa.Integer()),
        sa.Column("duration_s", sa.Float()),
        sa.Column("created_at", _when(), nullable=False),
    )
    op.create_index("ix_outputs_run_id", "outputs", ["run_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.String(50)),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("progress", sa.Float()),
        sa.Column("data", sa.JSON()),
        sa.Column("created_at", _when(), nullable=False),
    )
    op.create_index("ix_events_run_id", "events", ["run_id"])


def downgrade() -> None:
    raise NotImplementedError("reelflow does not downgrade a store: restore the copy made before the upgrade")
