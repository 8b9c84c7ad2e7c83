"""Content-addressed storage in an S3-compatible bucket (Cloudflare R2, MinIO, AWS); same keys as local.

Key scheme: ``object_key(sha256, content_type)`` (``videos/ab/<sha256>.mp4``) under an optional prefix, so
one output lands once. S3 needs the key before the first byte is sent, while a stream's hash is known only
after the last one, so a write takes one of three routes:

* hash known first (local file, bytes, or ``expected_sha256`` given): HEAD the content key and upload only
  if absent; the hash is checked before ``CompleteMultipartUpload``, so a wrong stream never lands;
* stream that fits in the part buffers (``concurrency * part_size``, 64 MiB by default, the memory the
  upload uses anyway): read and hashed first, then HEAD + ``PutObject`` or a parallel multipart upload;
* longer stream: multipart upload to ``staging/<uuid>`` while hashing, then HEAD the content key; if absent,
  a server-side copy (CopyObject; UploadPartCopy above 5 GiB) writes it with the final headers. The staging
  object is deleted either way.

Nothing is held whole in memory or spooled to disk. Objects get ``Cache-Control: public, max-age=31536000,
immutable``, an inline ``Content-Disposition`` (filename of the first write) and ``x-amz-meta-sha256``.
A crash between staging and copy can leave a ``staging/`` object: give the bucket a lifecycle rule that
deletes ``staging/`` and aborts incomplete multipart uploads after a day.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterable
from itertools import chain, islice
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from reelflow.domain import MediaRef, StoredObject
from reelflow.storage.keys import object_key
from reelflow.storage.s3_stream import (
    MiB,
    Parts,
    StorageError,
    Tally,
    TransferSettings,
    call,
    multipart_upload,
    server_copy,
)
from reelflow.storage.source import SourceError, url_chunks

CACHE_CONTROL = "public, max-age=31536000, immutable"
READ_URL_EXPIRY_S = 24 * 3600
FILE_CHUNK = MiB


def content_disposition(filename: str) -> str:
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(FILE_CHUNK):
            yield block


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class R2Storage:
    """Content-addressed objects in one bucket; hands out the public (CDN) URL or a presigned one."""

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

    def put_bytes(self, data: bytes, content_type: str, filename: str | None = None) -> StoredObject:
        view = memoryview(data)
        chunks = (view[i:i + FILE_CHUNK] for i in range(0, len(view), FILE_CHUNK))
        sha256 = hashlib.sha256(data).hexdigest()
        return self._put(chunks, content_type, filename, sha256, Tally(sha256))

    def put_file(self, path: Path, content_type: str, filename: str | None = None) -> StoredObject:
        sha256 = sha256_of(path)
        return self._put(file_chunks(path), content_type, filename or path.name, sha256, Tally(sha256))

    def put_url(self, url: str, headers: dict[str, str] | None = None, content_type: str = "video/mp4",
                filename: str | None = None, expected_sha256: str | None = None) -> StoredObject:
        """Stream ``url`` into the bucket; transient source failures (drops, 5xx, 429) are tried again."""
        if expected_sha256 and (found := self._existing(expected_sha256, content_type, filename)):
            return found
        attempt = 1
        while True:
            try:
                with url_chunks(url, headers) as chunks:
                    return self.put_stream(chunks, content_type, filename, expected_sha256=expected_sha256)
            except SourceError as exc:
                if not exc.transient or attempt >= self.transfer.source_attempts:
                    raise
            time.sleep(self.transfer.source_retry_wait_s * 2 ** (attempt - 1))
            attempt += 1

    def put_media(self, media: MediaRef) -> StoredObject:
        """Copy a provider's output (local file or URL with headers) into the bucket."""
        if media.path:
            return self.put_file(Path(media.path), media.content_type, media.filename)
        if media.url:
            return self.put_url(media.url, media.headers, media.content_type, media.filename)
        raise StorageError(f"nothing to store: {media.describe()}")

    def put_stream(self, chunks: Iterable[bytes], content_type: str, filename: str | None = None,
                   expected_sha256: str | None = None) -> StoredObject:
        """Copy a byte stream in, hashing on the way; an object already stored is not uploaded again."""
        return self._put(chunks, content_type, filename, expected_sha256, Tally())

    def _put(self, chunks: Iterable[bytes], content_type: str, filename: str | None,
             expected_sha256: str | None, tally: Tally) -> StoredObject:
        if expected_sha256 and (found := self._existing(expected_sha256, content_type, filename)):
            return found
        buffers = self.transfer.concurrency + 1
        parts = Parts(tally.watch(chunks), self.transfer.part_size, buffers)
        pieces = iter(parts)
        head = list(islice(pieces, buffers))
        if len(head) < buffers:
            return self._put_buffered(head, parts, tally, content_type, filename, expected_sha256)
        stream = chain(head, pieces)
        del head
        if expected_sha256:
            return self._put_direct(stream, parts, tally, content_type, filename, expected_sha256)
        return self._put_staged(stream, parts, tally, content_type, filename)

    def _put_buffered(self, head: list[bytearray], parts: Parts, tally: Tally, content_type: str,
                      filename: str | None, expected: str | None) -> StoredObject:
        """The whole stream sits in the part buffers, so its hash is known before anything is sent."""
        _check(tally, expected)
        key = object_key(tally.sha256, content_type, filename)
        name = self.object_name(key)
        if self._size(name) == tally.size:
            return self._stored(key, tally.sha256, tally.size, content_type)
        headers = self._headers(key, tally.sha256, content_type, filename)
        if len(head) > 1:
            multipart_upload(self.client, self.bucket, name, head, headers, self.transfer.concurrency,
                             parts.release)
        else:
            call(f"PutObject {name}", self.client.put_object, Bucket=self.bucket, Key=name,
                 Body=head[0] if head else b"", **headers)
        return self._verified(key, tally, content_type)

    def _put_direct(self, pieces: Iterable[bytearray], parts: Parts, tally: Tally, content_type: str,
                    filename: str | None, expected: str) -> StoredObject:
        key = object_key(expected, content_type, filename)
        multipart_upload(self.client, self.bucket, self.object_name(key), pieces,
                         self._headers(key, expected, content_type, filename), self.transfer.concurrency,
                         parts.release, lambda: _check(tally, expected))
        return self._verified(key, tally, content_type)

    def _put_staged(self, pieces: Iterable[bytearray], parts: Parts, tally: Tally, content_type: str,
                    filename: str | None) -> StoredObject:
        staging = self.object_name(f"staging/{uuid.uuid4().hex}")
        multipart_upload(self.client, self.bucket, staging, pieces, {"ContentType": content_type},
                         self.transfer.concurrency, parts.release)
        key = object_key(tally.sha256, content_type, filename)
        name = self.object_name(key)
        try:
            if self._size(name) == tally.size:
                return self._stored(key, tally.sha256, tally.size, content_type)
            headers = self._headers(key, tally.sha256, content_type, filename)
            server_copy(self.client, self.bucket, staging, name, tally.size, headers, self.transfer)
        finally:
            self._delete_quietly(staging)
        return self._verified(key, tally, content_type)

    def _existing(self, sha256: str, content_type: str, filename: str | None) -> StoredObject | None:
        key = object_key(sha256, content_type, filename)
        size = self._size(self.object_name(key))
        return None if size is None else self._stored(key, sha256, size, content_type)

    def _headers(self, key: str, sha256: str, content_type: str, filename: str | None) -> dict[str, Any]:
        return {"ContentType": content_type, "CacheControl": CACHE_CONTROL,
                "ContentDisposition": content_disposition(filename or key.rsplit("/", 1)[1]),
                "Metadata": {"sha256": sha256}}

    def _size(self, name: str) -> int | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=name)["ContentLength"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"HeadObject {name} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"HeadObject {name} failed: {exc}") from exc

    def _verified(self, key: str, tally: Tally, content_type: str) -> StoredObject:
        name = self.object_name(key)
        if (size := self._size(name)) != tally.size:
            raise StorageError(f"{name} holds {size} bytes after the write, expected {tally.size}")
        return self._stored(key, tally.sha256, tally.size, content_type)

    def _stored(self, key: str, sha256: str, size: int, content_type: str) -> StoredObject:
        return StoredObject(key=key, sha256=sha256, bytes=size, content_type=content_type, path=None,
                            url=self.url_for(key))

    def _delete_quietly(self, name: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.delete_object(Bucket=self.bucket, Key=name)


def _check(tally: Tally, expected: str | None) -> None:
    if expected and tally.sha256 != expected:
        raise StorageError(f"content hash {tally.sha256} does not match the expected {expected}")

