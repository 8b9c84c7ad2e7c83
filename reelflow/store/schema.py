"""The store's schema: read which revision a store is at, create a new store at the head, and upgrade an
older one with Alembic (``reelflow/store/migrations``), one process at a time, after copying a SQLite file aside.

Checking an up-to-date store reads two rows and imports no Alembic, since it runs in every CLI call. A store
written before Alembic carries a ``schema_version`` number instead: it is stamped with the matching revision
and upgraded from there. That table stays, holding ``LEGACY_GUARD``, so a reelflow from before Alembic refuses
the store ("written by a newer reelflow") instead of using tables it does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table, inspect, text

from reelflow.core import filelock
from reelflow.errors import StoreSchemaError
from reelflow.store.backup import backup_sqlite
from reelflow.store.migrations import HEAD, LEGACY_REVISIONS
from reelflow.store.models import Base

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

LEGACY_GUARD = 1000
"""What ``schema_version`` holds once Alembic manages a store: more than any reelflow before Alembic accepts."""
READ_ONLY = "reelflow_read_only"
"""An execution option: on SQLite, a connection with it begins with a plain ``BEGIN`` (see ``store/db.py``)."""
ADVISORY_LOCK_KEY = 0x7265656C666C6F77  # "reelflow": PostgreSQL processes upgrading one database take turns on it
OWN_TABLE = "runs"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_alembic_version = Table(  # the table Alembic keeps its revision in, as Alembic itself creates it
    "alembic_version", MetaData(),
    Column("version_num", String(32), nullable=False), PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


@dataclass(frozen=True)
class Revision:
    """Where a store is: its Alembic ``revision`` (None for a new, empty store), or the ``schema_version`` of
    one written before Alembic (``revision`` is then the matching one, ``legacy`` that number)."""

    revision: str | None
    legacy: int | None = None

    @property
    def current(self) -> bool:
        return self.revision == HEAD and self.legacy is None


@dataclass(frozen=True)
class Upgrade:
    """What ``upgrade`` did: ``before`` → ``after`` (equal when there was nothing to do), and the copy made."""

    before: str | None
    after: str
    backup: Path | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def describe(engine: Engine) -> str:
    """Where the store is, for messages: its file, or its URL without the password."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        return engine.url.database
    return engine.url.render_as_string(hide_password=True)


def read_revision(conn: Connection, where: str) -> Revision:
    """The store's revision; ``StoreSchemaError`` for a store this reelflow cannot read or upgrade."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(found) != 1:
            raise StoreSchemaError(where, f"alembic_version holds {found!r}; a reelflow store has one revision")
        if found[0] != HEAD and found[0] not in known_revisions():
            raise StoreSchemaError(where, f"it is at revision {found[0]!r}, which this reelflow does not know (its "
                                   f"newest is {HEAD!r}): a newer reelflow wrote it. Use that version, or restore "
                                   "a copy made before the upgrade (reelflow.db.before-*)")
        return Revision(found[0])
    if "schema_version" in tables:
        number = conn.execute(text("SELECT version FROM schema_version")).scalar()
        if number not in LEGACY_REVISIONS:
            raise StoreSchemaError(where, f"schema_version is {number!r} but there is no alembic_version; "
                                   f"reelflow upgrades schema {min(LEGACY_REVISIONS)}-{max(LEGACY_REVISIONS)}")
        return Revision(LEGACY_REVISIONS[number], legacy=number)
    if OWN_TABLE in tables:
        raise StoreSchemaError(where, "it has reelflow's tables but no record of their schema "
                               "(neither alembic_version nor schema_version); reelflow will not guess")
    return Revision(None)


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def alembic_config(conn: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def ensure_current(engine: Engine) -> Upgrade | None:
    """Bring the store to the head if it is not there (at the engine's first use in a process); None when it
    already was, which costs one read-only look."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        found = read_revision(conn, describe(engine))
    if found.current:
        return None
    return upgrade(engine)


def upgrade(engine: Engine) -> Upgrade:
    """Create or upgrade the store to the head: one process at a time (a lock file beside a SQLite store, an
    advisory lock on PostgreSQL), a SQLite file first copied aside when there are tables to change."""
    where = describe(engine)
    with _one_at_a_time(engine):
        with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            found = read_revision(conn, where)
        if found.current:
            return Upgrade(HEAD, HEAD)
        backup = None
        if found.revision is not None and engine.dialect.name == "sqlite" and engine.url.database:
            backup = backup_sqlite(Path(engine.url.database), f"before-{found.revision}")
        try:
            with engine.begin() as conn:
                done = upgrade_in(conn, where)
        except StoreSchemaError:
            raise
        except Exception as exc:
            kept = f"; a copy of it is at {backup}" if backup else ""
            cause = getattr(exc, "orig", None) or exc  # the database's own words, without SQLAlchemy's wrapping
            raise StoreSchemaError(where, f"upgrading it from revision {found.revision} to {HEAD} failed, so "
                                   f"nothing was changed{kept} ({type(cause).__name__}: {cause})") from exc
    if not done.changed:  # another process (PostgreSQL: waiting on the advisory lock) upgraded it meanwhile
        return done
    done = Upgrade(done.before, done.after, backup)
    if done.before is None:
        log.info("created the store %s at revision %s", where, done.after)
    elif backup:
        log.warning("upgraded the store %s from revision %s to %s; the store as it was is copied to %s",
                    where, done.before, done.after, backup)
    else:
        log.warning("upgraded the store %s from revision %s to %s (no copy made: back a %s database up "
                    "yourself before upgrading reelflow)", where, done.before, done.after, engine.dialect.name)
    return done


def upgrade_in(conn: Connection, where: str) -> Upgrade:
    """The upgrade itself, inside the caller's transaction so that it applies whole or not at all (SQLite and
    PostgreSQL both change tables transactionally)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    found = read_revision(conn, where)
    if found.current:
        return Upgrade(HEAD, HEAD)
    if found.revision is None:
        Base.metadata.create_all(conn)
        _alembic_version.create(conn)
        conn.execute(_alembic_version.insert().values(version_num=HEAD))
    else:
        from alembic import command

        config = alembic_config(conn)
        if found.legacy is not None:
            command.stamp(config, found.revision)
        command.upgrade(config, HEAD)
    conn.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
    conn.execute(text("DELETE FROM schema_version"))
    conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": LEGACY_GUARD})
    return Upgrade(found.revision, HEAD)


@contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        yield  # PostgreSQL: upgrade_in takes an advisory lock inside the transaction
        return
    lock = filelock.acquire(Path(f"{engine.url.database}.upgrade.lock"))
    try:
        yield
    finally:
        lock.release(unlink=True)  # only needed while upgrading: leave no file behind
