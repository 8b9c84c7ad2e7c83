"""The REST API's token: ``REELFLOW_API_TOKEN`` when set, else the one kept in ``$REELFLOW_HOME/api-token``.

``serve`` and ``up`` create the file (mode 0600) on first start; the CLI, the Python API and scripts read it
the same way to call the API.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from reelflow.settings import get_settings


def read_api_token() -> str | None:
    """The token the REST API expects, or None when none is set and the file does not exist yet."""
    settings = get_settings()
    explicit = settings.api_token.get_secret_value().strip() if settings.api_token is not None else ""
    if explicit:
        return explicit
    path = settings.api_token_path
    try:
        seen = os.stat(path)
    except FileNotFoundError:
        return None
    version = (seen.st_ino, seen.st_size, seen.st_mtime_ns, seen.st_ctime_ns)
    known = _read.get(path)
    now = time.monotonic()
    if known is not None and known[0] == version and now - known[1] < TOKEN_FILE_TRUSTED_S:
        return known[2]
    try:
        token = path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    _read[path] = (version, now, token)
    return token


TOKEN_FILE_TRUSTED_S = 1.0
_read: dict[Path, tuple[tuple[int, int, int, int], float, str | None]] = {}
"""The token file's contents by path, with the stat they were read at and when: the REST API checks the token on
every request, and one stat costs less than opening and reading the file (each system call is a turn a busy
server's other threads can take the GIL in). A file written anew is read again once its stat differs, and a
rewrite the stat cannot tell (same size within one timestamp tick) within TOKEN_FILE_TRUSTED_S."""


def ensure_api_token() -> str:
    """The token, creating the token file (readable by its owner only) when there is none yet."""
    found = read_api_token()
    if found is not None:
        return found
    path = get_settings().api_token_path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return read_api_token() or ensure_api_token()
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def auth_enabled() -> bool:
    return get_settings().api_auth != "off"


def login_url(base_url: str, token: str) -> str:
    """The one-time URL that logs a browser into the panel (the panel drops the token from the address bar)."""
    return f"{base_url.rstrip('/')}/?token={quote(token, safe='')}"
