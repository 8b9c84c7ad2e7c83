"""How a store's tables are compared with ``reelflow.store.models`` (Alembic's autogenerate): by
``env.py`` when a revision is generated, and by the test that a model change without a migration fails."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, Text

from reelflow.store.models import Base

LEGACY_TABLE = "schema_version"
"""Kept by ``reelflow.store.schema`` as a guard, not part of the models."""


def include_name(name: str | None, kind: str, _parent: Any) -> bool:
    return not (kind == "table" and name == LEGACY_TABLE)


def compare_type(context: Any, _inspected: Any, _metadata: Any, inspected_type: Any, metadata_type: Any) -> bool | None:
    """SQLite keeps a VARCHAR's length as text and never enforces it (a widened column is not rewritten
    there); everywhere else Alembic's own comparison decides."""
    if context.dialect.name == "sqlite" and all(
            isinstance(t, String) and not isinstance(t, Text) for t in (inspected_type, metadata_type)):
        return False
    return None


OPTIONS: dict[str, Any] = {"target_metadata": Base.metadata, "include_name": include_name,
                           "compare_type": compare_type, "compare_server_default": True}


def differences(conn: Connection) -> list[Any]:
    """What Alembic would generate to bring the store at ``conn`` to the models; empty when they agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    return compare_metadata(MigrationContext.configure(conn, opts=OPTIONS), Base.metadata)
