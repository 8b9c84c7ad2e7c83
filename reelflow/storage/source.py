"""Reading an output as a stream of chunks: from its URL (provider CDN, ComfyUI /view with auth headers) or a file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from reelflow.errors import SourceError, TransientSourceError
from reelflow.storage.s3_stream import MiB, describe

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
TIMEOUT = httpx.Timeout(60.0, connect=15.0)
FILE_CHUNK = MiB


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(FILE_CHUNK):
            yield block


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def redact(url: str) -> str:
    """The URL without credentials or query string (signed provider URLs carry tokens there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


@contextmanager
def url_chunks(url: str, headers: dict[str, str] | None = None) -> Iterator[Iterator[bytes]]:
    """Open ``url`` and yield its body as an iterator of chunks; errors become ``SourceError``."""
    try:
        with httpx.Client(follow_redirects=True, timeout=TIMEOUT) as client, \
                client.stream("GET", url, headers=headers) as response:
            if response.status_code >= 400:
                failed = TransientSourceError if response.status_code in TRANSIENT_STATUS else SourceError
                raise failed(f"{redact(url)} answered HTTP {response.status_code}")
            yield _guarded(response.iter_bytes(), url)
    except httpx.TransportError as exc:
        raise TransientSourceError(f"reading {redact(url)} failed: {describe(exc)}") from exc


def _guarded(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    received = 0
    try:
        for chunk in chunks:
            received += len(chunk)
            yield chunk
    except httpx.TransportError as exc:
        raise TransientSourceError(f"reading {redact(url)} failed after {received} bytes: {describe(exc)}") from exc
