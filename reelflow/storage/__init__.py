"""Durable storage for inputs and outputs: the local folder by default, R2 when configured."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from reelflow.core.domain import MediaRef, StoredObject
from reelflow.errors import ReelflowError
from reelflow.settings import get_settings
from reelflow.storage.config import r2_block_name
from reelflow.storage.keys import RunKey
from reelflow.storage.local import LocalStorage


class Storage(Protocol):
    """Local folder or bucket, same keys (``reelflow.storage.keys``): a URL or stream given its run's ``RunKey``
    lands at the run's key, everything else (files, bytes) at its content key."""

    name: str

    def exists(self, key: str) -> bool: ...
    def read_chunks(self, key: str) -> Iterator[bytes]: ...
    def readable(self, key: str, content_type: str) -> MediaRef: ...
    def put_bytes(self, data: bytes, content_type: str, filename: str | None = None) -> StoredObject: ...
    def put_file(self, path: Path, content_type: str) -> StoredObject: ...
    def put_media(self, media: MediaRef, run_key: RunKey | None = None) -> StoredObject: ...
    def put_stream(self, chunks: Iterable[bytes], content_type: str, filename: str | None = None, *,
                   run_key: RunKey | None = None) -> StoredObject: ...


def get_storage(target: str = "auto") -> Storage:
    """``local``: the folder under REELFLOW_HOME; ``r2``: the configured R2 block; ``auto``: R2 if configured."""
    block_name = r2_block_name() if target in ("auto", "r2") else None
    if block_name:
        return _r2(block_name)
    if target == "r2":
        raise ReelflowError("storage 'r2' is not configured: run `reelflow storage r2 ...` (see README)")
    return LocalStorage(get_settings().storage_path)


def _r2(block_name: str) -> Storage:
    from reelflow.orchestration.prefect_server import ensure_api

    ensure_api()
    from blocks.r2_storage import R2Bucket

    try:
        block = R2Bucket.load(block_name, _sync=True)  # sync even when called from a flow's event loop
    except ValueError as exc:
        raise ReelflowError(f"R2 storage block '{block_name}' cannot be loaded: {exc}") from None
    return block.storage()
