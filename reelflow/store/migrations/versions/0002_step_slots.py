"""Schema 2: the concurrency slot a step holds while it runs (steps.slot_limit, steps.slot_lease_id).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("steps", sa.Column("slot_limit", sa.String(100)))
    op.add_column("steps", sa.Column("slot_lease_id", sa.String(36)))


def downgrade() -> None:
    raise NotImplementedError("reelflow does not downgrade a store: restore the copy made before the upgrade")
