"""The REST API's token: ``REELFLOW_API_TOKEN`` when set, else the one kept in ``$REELFLOW_HOME/api-token``.

``serve`` and ``up`` create the file (mode 0600) on first start; the CLI, the Python API and scripts read it
the same way to call the API.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote

from reelflow.settings import get_settings


def read_api_token() -> str | None:
    """The token the REST API expects, or None when none is set and the file does not exist yet."""
    settings = get_settings()
    explicit = settings.api_token.get_secret_value().strip() if settings.api_token is not None else ""
    if explicit:
        return explicit
    try:
        return settings.api_token_path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


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
