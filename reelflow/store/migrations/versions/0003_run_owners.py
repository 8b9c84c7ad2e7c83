"""Schema 3: every queued or running run has an owner process (runs.owner, table run_owners).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("owner", sa.String(120)))
    op.create_index("ix_runs_owner", "runs", ["owner"])
    op.create_table(
        "run_owners",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("reelflow does not downgrade a store: restore the copy made before the upgrade")
