"""Objects in an S3-compatible bucket (Cloudflare R2, MinIO, AWS), under the same keys as the local folder.

S3 needs an object's key before its first byte is sent, so the key scheme (``reelflow.storage.keys``, under an
optional prefix) picks a key that is known then, and every write is a HEAD first, then one upload, straight to
that final key:

* content known first (local file, bytes, or ``expected_sha256`` given): the content key
  ``videos/ab/<sha256>.mp4``; uploaded only if absent, and the hash is checked before the upload completes, so
  a wrong stream never lands;
* a provider output streamed from its URL, with its ``RunKey``: the run's key ``runs/<run_id>/video.mp4``,
  hashed on the way. An object already there (a retried task whose upload had completed) is neither fetched
  nor uploaded again; its sha256, which the object's metadata cannot carry (it is set before the hash is
  known), is then read back from the bucket: a rare path that costs one GET of the object;
* neither (``put_url`` or ``put_stream`` of unknown hash without a run key): up to ``concurrency * part_size``
  bytes (48 MiB by default) are read into memory; if the stream ends there its hash is known and it goes to its
  content key. A longer URL is read twice (to hash it, then HEAD and upload as above); a longer plain stream
  is refused with ``HashNeededError``.

Every upload is boto3's managed transfer (``reelflow.storage.s3_stream``), of a file by its path or of a
stream through a ``HashingReader``: one ``PutObject`` up to ``part_size``, anything longer a parallel
multipart upload with at most ``concurrency`` parts of a stream in memory; nothing is held whole in memory or
written to disk, and there is no staging object or server-side copy. Any failure (source, S3, hash check)
aborts the multipart upload, so no half object appears under a key; a size check (HEAD) follows every
upload. Objects get ``Cache-Control: public, max-age=31536000, immutable``, an inline ``Content-Disposition``
(the filename of the first write) and ``x-amz-meta-sha256`` (content keys) or ``x-amz-meta-run-id`` (run
keys). A process killed mid-upload cannot abort: give the bucket a lifecycle rule that aborts incomplete
multipart uploads after a day.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from reelflow.core.domain import MediaRef, StoredObject
from reelflow.errors import HashNeededError, StorageError, TransientSourceError
from reelflow.storage.keys import RunKey, object_key, run_object_key
from reelflow.storage.s3_stream import HashingReader, TransferSettings, call, describe, upload
from reelflow.storage.source import FILE_CHUNK, sha256_of, url_chunks

CACHE_CONTROL = "public, max-age=31536000, immutable"
READ_URL_EXPIRY_S = 24 * 3600
T = TypeVar("T")


def content_disposition(filename: str) -> str:
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class R2Storage:
    """Objects in one bucket under content or run keys; hands out the public (CDN) URL or a presigned one."""

    name = "r2"

    def __init__(self, client: Any, bucket: str, *, prefix: str = "", public_base_url: str | None = None,
                 presign: bool = False, presign_expiry_s: int = 7 * 24 * 3600,
                 transfer: TransferSettings | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign = presign
        self.presign_expiry_s = presign_expiry_s
        self.transfer = transfer or TransferSettings()

    def object_name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def url_for(self, key: str) -> str:
        """``public_base_url/<object name>``; a presigned GET when asked for or without a public URL."""
        name = self.object_name(key)
        if self.public_base_url and not self.presign:
            return f"{self.public_base_url}/{quote(name)}"
        return self.presigned_url(key, self.presign_expiry_s)

    def presigned_url(self, key: str, expires_s: int) -> str:
        name = self.object_name(key)
        return call(f"presign {name}", self.client.generate_presigned_url, ClientMethod="get_object",
                    Params={"Bucket": self.bucket, "Key": name}, ExpiresIn=expires_s)

    def readable(self, key: str, content_type: str) -> MediaRef:
        """A URL that a task or a provider (fal fetches inputs itself) can read now, public bucket or not."""
        return MediaRef(url=self.presigned_url(key, READ_URL_EXPIRY_S), content_type=content_type)

    def exists(self, key: str) -> bool:
        return self._size(self.object_name(key)) is not None

    def read_chunks(self, key: str) -> Iterator[bytes]:
        """The stored object's bytes, a chunk at a time, read from the bucket (not the CDN URL, which may be
        private or a presigned URL that has expired); a missing object raises ``StorageError`` at once."""
        name = self.object_name(key)
        body = call(f"read {name}", self.client.get_object, Bucket=self.bucket, Key=name)["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(FILE_CHUNK)
            except (BotoCoreError, ClientError) as exc:
                raise StorageError(f"read {name} failed: {describe(exc)}") from exc
            finally:
                body.close()
        return chunks()

    def put_bytes(self, data: bytes, content_type: str, filename: str | None = None) -> StoredObject:
        sha256 = hashlib.sha256(data).hexdigest()
        return self._put_content(HashingReader([data], known_sha256=sha256), content_type, filename, sha256)

    def put_file(self, path: Path, content_type: str, filename: str | None = None) -> StoredObject:
        """Hash the file for its content key; if that is absent, boto3 uploads the file by its path (each part
        read from disk by the thread that sends it, as ``upload_file`` does)."""
        filename = filename or path.name
        size = path.stat().st_size
        sha256 = sha256_of(path)
        if found := self._existing(sha256, content_type, filename):
            return found
        key = object_key(sha256, content_type, filename)
        upload(self.client, self.bucket, self.object_name(key), path,
               self._headers(key, content_type, filename, {"sha256": sha256}), self.transfer)
        return self._verified(key, sha256, size, content_type)

    def put_url(self, url: str, headers: dict[str, str] | None = None, content_type: str = "video/mp4",
                filename: str | None = None, expected_sha256: str | None = None, *,
                run_key: RunKey | None = None) -> StoredObject:
        """Stream ``url`` into the bucket: to the run's key given ``run_key``, else to its content key. An
        object already there is not fetched or uploaded again; transient source failures (drops, 5xx, 429)
        are tried again."""
        if run_key is not None:
            key = run_object_key(run_key, content_type, filename)
            if found := self._existing_run(key, content_type):
                return found
            return self._from_source(url, headers,
                                     lambda chunks: self._write_run(chunks, key, run_key, content_type, filename))
        if expected_sha256 is None:
            try:
                return self._from_source(url, headers,
                                         lambda chunks: self._put_unknown(chunks, content_type, filename))
            except HashNeededError as needed:  # too long to hold: now hashed, read it again to upload
                expected_sha256 = needed.sha256
        sha256 = expected_sha256
        if found := self._existing(sha256, content_type, filename):
            return found
        return self._from_source(url, headers, lambda chunks: self._write_content(
            HashingReader(chunks, expected_sha256=sha256), content_type, filename, sha256))

    def put_media(self, media: MediaRef, run_key: RunKey | None = None) -> StoredObject:
        """Copy a provider's output in: a local file to its content key, a URL (with its headers) to the
        run's key when ``run_key`` is given."""
        if media.path:
            return self.put_file(Path(media.path), media.content_type, media.filename)
        if media.url:
            return self.put_url(media.url, media.headers, media.content_type, media.filename, run_key=run_key)
        raise StorageError(f"nothing to store: {media.describe()}")

    def put_stream(self, chunks: Iterable[bytes], content_type: str, filename: str | None = None,
                   expected_sha256: str | None = None, *, run_key: RunKey | None = None) -> StoredObject:
        """Copy a byte stream in, hashing on the way; an object already stored is not uploaded again."""
        if run_key is not None:
            key = run_object_key(run_key, content_type, filename)
            if found := self._existing_run(key, content_type):
                return found
            return self._write_run(chunks, key, run_key, content_type, filename)
        if expected_sha256 is None:
            return self._put_unknown(chunks, content_type, filename)
        return self._put_content(HashingReader(chunks, expected_sha256=expected_sha256), content_type, filename,
                                 expected_sha256)

    def _from_source(self, url: str, headers: dict[str, str] | None, write: Callable[[Iterator[bytes]], T]) -> T:
        attempt = 1
        while True:
            try:
                with url_chunks(url, headers) as chunks:
                    return write(chunks)
            except TransientSourceError:
                if attempt >= self.transfer.source_attempts:
                    raise
            time.sleep(self.transfer.source_retry_wait_s * 2 ** (attempt - 1))
            attempt += 1

    def _put_content(self, reader: HashingReader, content_type: str, filename: str | None,
                     sha256: str) -> StoredObject:
        if found := self._existing(sha256, content_type, filename):
            return found
        return self._write_content(reader, content_type, filename, sha256)

    def _write_content(self, reader: HashingReader, content_type: str, filename: str | None,
                       sha256: str) -> StoredObject:
        key = object_key(sha256, content_type, filename)
        return self._write(key, reader, content_type, self._headers(key, content_type, filename, {"sha256": sha256}))

    def _write_run(self, chunks: Iterable[bytes], key: str, run_key: RunKey, content_type: str,
                   filename: str | None) -> StoredObject:
        headers = self._headers(key, content_type, filename, {"run-id": run_key.run_id})
        return self._write(key, HashingReader(chunks), content_type, headers)

    def _put_unknown(self, chunks: Iterable[bytes], content_type: str, filename: str | None) -> StoredObject:
        """Read up to ``concurrency * part_size`` bytes: if the stream ends there, its hash and so its content
        key are known, and the bytes read go up from memory, each dropped once it is in a part."""
        limit = self.transfer.concurrency * self.transfer.part_size
        reader = HashingReader(chunks)
        head: deque[bytes] = deque()
        buffered = 0
        while buffered <= limit and (block := reader.read(FILE_CHUNK)):
            head.append(block)
            buffered += len(block)
        if buffered > limit:
            head.clear()
            reader.drain()
            raise HashNeededError(reader.sha256, limit)
        key = object_key(reader.sha256, content_type, filename)
        if self._size(self.object_name(key)) == reader.size:
            return self._stored(key, reader.sha256, reader.size, content_type)
        return self._write(key, HashingReader(_popping(head), known_sha256=reader.sha256), content_type,
                           self._headers(key, content_type, filename, {"sha256": reader.sha256}))

    def _write(self, key: str, reader: HashingReader, content_type: str, headers: dict[str, Any]) -> StoredObject:
        upload(self.client, self.bucket, self.object_name(key), reader, headers, self.transfer)
        return self._verified(key, reader.sha256, reader.size, content_type)

    def _existing(self, sha256: str, content_type: str, filename: str | None) -> StoredObject | None:
        key = object_key(sha256, content_type, filename)
        size = self._size(self.object_name(key))
        return None if size is None else self._stored(key, sha256, size, content_type)

    def _existing_run(self, key: str, content_type: str) -> StoredObject | None:
        """The object a previous attempt of this run wrote, hashed by reading it back (see the module notes)."""
        name = self.object_name(key)
        if (size := self._size(name)) is None:
            return None
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
            with contextlib.closing(body):
                reader = HashingReader(body.iter_chunks(FILE_CHUNK))
                reader.drain()
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"GetObject {name} failed: {exc}") from exc
        if reader.size != size:
            raise StorageError(f"{name} gave {reader.size} bytes, its HEAD said {size}")
        return self._stored(key, reader.sha256, size, content_type)

    def _headers(self, key: str, content_type: str, filename: str | None, metadata: dict[str, str]) -> dict[str, Any]:
        return {"ContentType": content_type, "CacheControl": CACHE_CONTROL,
                "ContentDisposition": content_disposition(filename or key.rsplit("/", 1)[1]), "Metadata": metadata}

    def _size(self, name: str) -> int | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=name)["ContentLength"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"HeadObject {name} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"HeadObject {name} failed: {exc}") from exc

    def _verified(self, key: str, sha256: str, size: int, content_type: str) -> StoredObject:
        name = self.object_name(key)
        if (stored := self._size(name)) != size:
            raise StorageError(f"{name} holds {stored} bytes after the write, expected {size}")
        return self._stored(key, sha256, size, content_type)

    def _stored(self, key: str, sha256: str, size: int, content_type: str) -> StoredObject:
        return StoredObject(key=key, sha256=sha256, bytes=size, content_type=content_type, path=None,
                            url=self.url_for(key))



def _popping(blocks: deque[bytes]) -> Iterator[bytes]:
    """The blocks in order, each let go of as it is handed out."""
    while blocks:
        yield blocks.popleft()
