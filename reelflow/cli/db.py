"""``reelflow db``: which schema revision the store is at, and upgrading it explicitly (every other command
upgrades an older store by itself the first time it opens it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from reelflow.cli.output import print_json

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(name="db", help="The store's schema: its revision, and upgrading it (Alembic).",
                  no_args_is_help=True)
out = Console()
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@contextmanager
def _engine() -> Iterator[Engine]:
    from reelflow.settings import get_settings
    from reelflow.store.db import make_engine

    engine = make_engine(get_settings().db_url, set_up=False)
    try:
        yield engine
    finally:
        engine.dispose()


def _absent(url: str) -> Path | None:
    """The SQLite file of a store not made yet (looking must not create it), else None."""
    path = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    return path if path is not None and not path.exists() else None


@app.command()
def current(as_json: AsJson = False) -> None:
    """Show the store's revision, the newest this reelflow knows, and whether an upgrade is due."""
    from reelflow.settings import get_settings
    from reelflow.store import schema
    from reelflow.store.migrations import HEAD

    absent = _absent(get_settings().db_url)
    if absent is not None:
        found, where = schema.Revision(None), str(absent)
    else:
        with _engine() as engine, engine.connect().execution_options(**{schema.READ_ONLY: True}) as conn:
            where = schema.describe(engine)
            found = schema.read_revision(conn, where)
    if as_json:
        print_json({"store": where, "revision": found.revision, "legacy_schema": found.legacy, "head": HEAD,
                    "current": found.current})
        return
    out.print(f"store: {escape(where)}", soft_wrap=True)
    if found.revision is None:
        out.print(f"revision: none (a new store; it is created at {HEAD} when first used)")
        return
    legacy = f" (schema {found.legacy}, recorded before reelflow used Alembic)" if found.legacy else ""
    out.print(f"revision: {found.revision}{legacy}")
    out.print(f"newest: {HEAD}")
    if found.current:
        out.print("up to date")
    else:
        out.print("an upgrade is due: `reelflow db upgrade` (or the next reelflow command) does it, after "
                  "copying a SQLite store aside")


@app.command()
def upgrade(as_json: AsJson = False) -> None:
    """Upgrade the store to the newest revision, copying a SQLite file aside first; nothing to do when current."""
    from reelflow.store import schema

    with _engine() as engine:
        where = schema.describe(engine)
        done = schema.upgrade(engine)
    if as_json:
        print_json({"store": where, "from": done.before, "to": done.after, "changed": done.changed,
                    "backup": str(done.backup) if done.backup else None})
        return
    if not done.changed:
        out.print(f"the store {escape(where)} is at {done.after}, the newest revision: nothing to do", soft_wrap=True)
    elif done.before is None:
        out.print(f"created the store {escape(where)} at revision {done.after}", soft_wrap=True)
    else:
        out.print(f"upgraded the store {escape(where)}: {done.before} → {done.after}", soft_wrap=True)
        out.print(f"the store as it was: {escape(str(done.backup))}" if done.backup else
                  "no copy was made (not a SQLite file): keep your own backup of the database", soft_wrap=True)
