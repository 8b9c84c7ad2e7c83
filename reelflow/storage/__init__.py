"""Durable storage for inputs and outputs: the local folder by default, R2 when configured."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from reelflow.domain import StoredObject
from reelflow.errors import ReelflowError
from reelflow.settings import get_settings
from reelflow.storage.local import LocalStorage


class Storage(Protocol):
    name: str

    def exists(self, key: str) -> bool: ...
    def put_bytes(self, data: bytes, content_type: str, filename: str | None = None) -> StoredObject: ...
    def put_file(self, path: Path, content_type: str) -> StoredObject: ...
    def put_stream(self, chunks: Iterable[bytes], content_type: str,
                   filename: str | None = None) -> StoredObject: ...


def get_storage(target: str = "auto") -> Storage:
    """``local``: the folder under REELFLOW_HOME; ``r2``: the configured R2 block; ``auto``: R2 if configured."""
    settings = get_settings()
    if target in ("r2", "auto") and settings.storage_block:
        raise ReelflowError("R2 storage is not built into this version of reelflow")
    if target == "r2":
        raise ReelflowError("storage 'r2' needs an R2 block: set REELFLOW_STORAGE_BLOCK (see `reelflow setup r2`)")
    return LocalStorage(settings.storage_path)
