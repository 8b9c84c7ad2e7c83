"""Which URLs reelflow fetches: well-formed http(s) URLs, and (unless allowed) only from public addresses.

The check is made on the address actually connected to: :class:`GuardedTransport` resolves the name once, checks
every address, and connects to the checked one (TLS SNI and ``Host`` still name the host), so a name that
resolves differently on a second lookup (DNS rebinding) cannot reach a private address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx

from reelflow.errors import SpecError

MAX_LABEL = 63
MAX_NAME = 253


def parse_http_url(url: str, *, field: str) -> SplitResult:
    """The URL's parts; ``SpecError`` naming ``field`` unless it is http(s) with a valid host name and port."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(field, f"'{url[:200]}' is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise SpecError(field, f"'{url[:200]}' has a bad port; give a number from 1 to 65535") from None
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
        return parts
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        encoded = b""
    if not encoded or len(encoded) > MAX_NAME or any(not 1 <= len(label) <= MAX_LABEL for label in labels):
        raise SpecError(field, f"'{host[:100]}' is not a valid host name: each dot-separated part must have "
                        f"1 to {MAX_LABEL} characters, {MAX_NAME} in all")
    return parts


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def vetted_addresses(host: str, port: int, *, field: str, allow_private: bool) -> list[str]:
    """The addresses ``host`` resolves to, once; ``SpecError`` if any is private (unless allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise SpecError(field, f"cannot resolve host '{host[:100]}': {reason}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not allow_private and not ipaddress.ip_address(address.split("%")[0]).is_global:
            raise SpecError(field, f"'{host[:100]}' resolves to a non-public address ({address}); "
                            "set REELFLOW_ALLOW_PRIVATE_URLS=true to allow private hosts")
    return addresses


def check_public_url(url: str, *, field: str, allow_private: bool) -> None:
    """Raise ``SpecError`` unless ``url`` is a well-formed http(s) URL whose host (when required) is public."""
    parts = parse_http_url(url, field=field)
    if not allow_private:
        vetted_addresses(parts.hostname or "", default_port(parts), field=field, allow_private=False)


class GuardedBackend(httpcore.SyncBackend):
    """Connects to an address it has just resolved and checked, never to one a later lookup returns."""

    def __init__(self, *, field: str, allow_private: bool) -> None:
        self.field = field
        self.allow_private = allow_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[tuple[int, int, int | bytes | None]] | None = None
                    ) -> httpcore.NetworkStream:
        addresses = vetted_addresses(host, port, field=self.field, allow_private=self.allow_private)
        return super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)  # type: ignore[arg-type]


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a :class:`GuardedBackend`; refusals surface as ``SpecError`` naming ``field``."""

    def __init__(self, *, field: str, allow_private: bool, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        # httpx has no option for httpcore's network backend; its pool reads this attribute on each connect.
        self._pool._network_backend = GuardedBackend(field=field, allow_private=allow_private)  # type: ignore[union-attr]
