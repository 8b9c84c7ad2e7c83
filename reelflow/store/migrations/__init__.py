"""The store's Alembic migrations, run from code (no ``alembic.ini``): ``env.py`` and ``versions/``.

``reelflow.store.schema`` runs them. A new revision, from a store at the current head::

    from alembic import command
    from reelflow.store.schema import alembic_config
    with engine.begin() as conn:
        command.revision(alembic_config(conn), "what changed", autogenerate=True, rev_id="0006")

(``engine`` from ``reelflow.store.db.make_engine``), check what it wrote, then set ``HEAD`` below to its id
(``tests/test_store_migration.py`` checks both).
"""

HEAD = "0006"
"""The newest revision, known without importing Alembic so that checking an up-to-date store stays cheap."""

LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003", 4: "0004"}
"""The revision that matches each ``schema_version`` a store written before Alembic can carry."""
