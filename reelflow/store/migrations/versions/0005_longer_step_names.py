"""Step names up to 120 characters (``steps.name``, ``events.step``: a pipeline step ``shots[1]:cache_r2:video``).

Its own revision because a store that schema 4's hand-written migration upgraded kept the old length of 50.
SQLite never enforces a VARCHAR length, so there the columns are left as they are (rewriting ``steps`` would
also fire the ``ON DELETE SET NULL`` of ``outputs.step_id``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column("steps", "name", type_=sa.String(120), existing_type=sa.String(50), existing_nullable=False)
    op.alter_column("events", "step", type_=sa.String(120), existing_type=sa.String(50), existing_nullable=True)


def downgrade() -> None:
    raise NotImplementedError("reelflow does not downgrade a store: restore the copy made before the upgrade")
