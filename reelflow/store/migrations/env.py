"""Alembic's environment: migrations run on the connection ``reelflow.store.schema`` hands over, inside its
transaction, towards ``reelflow.store.models`` (compared as ``compare.py`` says)."""

from __future__ import annotations

from alembic import context

from reelflow.store.migrations.compare import OPTIONS

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("reelflow's migrations run on a connection given by reelflow.store.schema, "
                       "not from the alembic command line")
context.configure(connection=connection, **OPTIONS)
with context.begin_transaction():
    context.run_migrations()
