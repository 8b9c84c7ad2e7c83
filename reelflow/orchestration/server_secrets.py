"""The two secrets of the Prefect server reelflow starts, each generated once into ``$REELFLOW_HOME/secrets/`` (0600).

- ``prefect-auth``: the server's ``PREFECT_SERVER_API_AUTH_STRING``, which every client sends as
  ``PREFECT_API_AUTH_STRING`` (HTTP Basic); without it the API answers 401.
- ``prefect-encryption.key``: the Fernet key of the Block documents (``PREFECT_SERVER_ENCRYPTION_KEY``). Without it
  Prefect would generate one and store it in the ``configuration`` table of the very database it encrypts; a key
  already there is moved into the file (and out of the database) the first time, so existing Blocks still decrypt.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from reelflow.settings import Settings

AUTH_FILE = "prefect-auth"
KEY_FILE = "prefect-encryption.key"


def secrets_dir(settings: Settings) -> Path:
    folder = settings.home / "secrets"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The file's content; when it does not exist, ``make()`` written to it atomically with mode 0600."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:  # mkstemp creates it 0600
            handle.write(make() + "\n")
        with contextlib.suppress(FileExistsError):  # another process won the race: keep its value
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_text().strip()


def auth_string(settings: Settings) -> str:
    """``user:password`` for HTTP Basic, as the Prefect UI's login form and clients send it."""
    return _read_or_create(secrets_dir(settings) / AUTH_FILE, lambda: f"reelflow:{secrets.token_urlsafe(32)}")


def _sqlite_path(settings: Settings, database_url: str | None) -> Path | None:
    if database_url is None:
        return settings.prefect_home / "prefect.db"
    for prefix in ("sqlite+aiosqlite:///", "sqlite:///"):
        if database_url.startswith(prefix):
            return Path(database_url.removeprefix(prefix))
    return None


def _key_in_database(database: Path | None) -> str | None:
    if database is None or not database.is_file():
        return None
    with contextlib.closing(sqlite3.connect(database)) as connection:
        try:
            row = connection.execute("SELECT value FROM configuration WHERE key = 'ENCRYPTION_KEY'").fetchone()
        except sqlite3.Error:
            return None
    return json.loads(row[0])["fernet_key"] if row else None


def _drop_key_from_database(database: Path | None, key: str) -> None:
    """Remove the database's copy of ``key`` (never a different key: Blocks encrypted with it would be lost)."""
    if _key_in_database(database) != key:
        return
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:  # type: ignore[arg-type]
        connection.execute("DELETE FROM configuration WHERE key = 'ENCRYPTION_KEY'")


def encryption_key(settings: Settings, database_url: str | None = None) -> str:
    """The Block documents' Fernet key, kept outside the database (SQLite: moved out of it on first use)."""
    database = _sqlite_path(settings, database_url)
    path = secrets_dir(settings) / KEY_FILE
    key = _read_or_create(path, lambda: _key_in_database(database) or base64.urlsafe_b64encode(
        secrets.token_bytes(32)).decode())
    _drop_key_from_database(database, key)
    return key


def basic_authorization(value: str) -> dict[str, str]:
    """The header Prefect's server expects for the auth string ``value``."""
    return {"Authorization": f"Basic {base64.b64encode(value.encode()).decode()}"}
