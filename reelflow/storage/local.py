"""Local-folder storage: the offline default, same keys as R2."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from reelflow.core.domain import MediaRef, StoredObject
from reelflow.errors import StorageError
from reelflow.storage.keys import RunKey, object_key, run_object_key
from reelflow.storage.source import file_chunks, sha256_of, url_chunks


class LocalStorage:
    """Files under one root folder, by content or run key (``reelflow.storage.keys``); writes are atomic
    (temp file in the same folder tree, then rename)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        return self.root / key

    def readable(self, key: str, content_type: str) -> MediaRef:
        return MediaRef(path=str(self.path_for(key)), content_type=content_type)

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def read_chunks(self, key: str) -> Iterator[bytes]:
        path = self.path_for(key)
        if not path.is_file():
            raise StorageError(f"{key} is not stored in {self.root}")
        return file_chunks(path)

    def put_bytes(self, data: bytes, content_type: str, filename: str | None = None) -> StoredObject:
        return self.put_stream([data], content_type, filename)

    def put_file(self, path: Path, content_type: str) -> StoredObject:
        return self.put_stream(file_chunks(path), content_type, path.name)

    def put_media(self, media: MediaRef, run_key: RunKey | None = None) -> StoredObject:
        """Copy a provider's output in, streaming: a local file to its content key, a URL (with its auth
        headers) to the run's key when ``run_key`` is given, as R2 does."""
        if media.path:
            return self.put_file(Path(media.path), media.content_type)
        if not media.url:
            raise ValueError(f"nothing to store: {media.describe()}")
        if run_key is not None:  # a previous attempt stored it: do not fetch it again
            found = self._existing(run_object_key(run_key, media.content_type, media.filename), media.content_type)
            if found:
                return found
        with url_chunks(media.url, media.headers) as chunks:
            return self.put_stream(chunks, media.content_type, media.filename, run_key=run_key)

    def put_stream(self, chunks: Iterable[bytes], content_type: str, filename: str | None = None, *,
                   run_key: RunKey | None = None) -> StoredObject:
        """Copy a byte stream in, hashing on the way, to the run's key if given, else to its content key; an
        object already stored is kept as it is."""
        run_name = run_object_key(run_key, content_type, filename) if run_key is not None else None
        if run_name and (found := self._existing(run_name, content_type)):
            return found
        staging = self.root / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, temp_name = tempfile.mkstemp(dir=staging)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
            sha = digest.hexdigest()
            key = run_name or object_key(sha, content_type, filename)
            target = self.path_for(key)
            if target.is_file() and target.stat().st_size == size:
                os.unlink(temp_name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp_name, target)
        except BaseException:
            if os.path.exists(temp_name):
                os.unlink(temp_name)
            raise
        return self._stored(key, sha, size, content_type)

    def _existing(self, key: str, content_type: str) -> StoredObject | None:
        """The file a previous attempt of this run wrote (hashed again: a run key does not carry the hash)."""
        target = self.path_for(key)
        if not target.is_file():
            return None
        return self._stored(key, sha256_of(target), target.stat().st_size, content_type)

    def _stored(self, key: str, sha256: str, size: int, content_type: str) -> StoredObject:
        target = self.path_for(key)
        return StoredObject(key=key, sha256=sha256, bytes=size, content_type=content_type, path=str(target),
                            url=target.as_uri())
