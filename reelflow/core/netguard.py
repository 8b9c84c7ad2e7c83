"""Refuse to fetch from loopback, link-local or private addresses unless the settings allow it."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from reelflow.errors import SpecError


def check_public_url(url: str, *, field: str, allow_private: bool) -> None:
    """Raise ``SpecError`` unless ``url`` is http(s) and (when required) every address it resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(field, f"'{url}' is not an http(s) URL")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise SpecError(field, f"cannot resolve host '{parts.hostname}': {exc.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise SpecError(field, f"'{parts.hostname}' resolves to a non-public address ({address}); "
                            "set REELFLOW_ALLOW_PRIVATE_URLS=true to allow private hosts")
