"""Costs as integer micro-dollars (``runs.cost_micro_usd``, ``steps.cost_micro_usd``) instead of floating-point
dollars (``cost_usd``): money is exact in the store. Each old value is rounded to the micro-dollar, which every
price reelflow recorded was already quantised to.

SQLite drops the old column with ``ALTER TABLE ... DROP COLUMN`` (3.35+), which rewrites the table in place; a
batch copy of ``steps`` would fire the ``ON DELETE SET NULL`` of ``outputs.step_id``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("runs", "steps")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("cost_micro_usd", sa.BigInteger()))
        op.execute(f"UPDATE {table} SET cost_micro_usd = CAST(ROUND(cost_usd * 1000000) AS BIGINT) "
                   "WHERE cost_usd IS NOT NULL")
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN cost_usd")
        else:
            op.drop_column(table, "cost_usd")


def downgrade() -> None:
    raise NotImplementedError("reelflow does not downgrade a store: restore the copy made before the upgrade")
