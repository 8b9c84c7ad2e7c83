"""Low-level S3 transfers: a stream cut into equal parts uploaded in parallel as one multipart upload.

Memory is bounded by ``(concurrency + 1) * part_size``: at most ``concurrency`` parts in flight and one
being filled, in reused buffers. Every part but the last has exactly ``part_size`` bytes (R2 requires
equal parts). A multipart upload that fails for any reason is aborted: no half object, no orphan parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reelflow.errors import StorageError

MiB = 1024 * 1024


@dataclass(frozen=True)
class TransferSettings:
    part_size: int = 8 * MiB
    concurrency: int = 8
    source_attempts: int = 3
    source_retry_wait_s: float = 1.0


class Tally:
    """sha256 and byte count of everything that passed through ``watch``. Given ``known_sha256`` (a hash
    this process has just computed itself), only the bytes are counted."""

    def __init__(self, known_sha256: str | None = None) -> None:
        self.known = known_sha256
        self.digest = None if known_sha256 else hashlib.sha256()
        self.size = 0

    def watch(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.digest:
                self.digest.update(chunk)
            self.size += len(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self.known or self.digest.hexdigest()  # type: ignore[union-attr]


class Parts:
    """Cuts a chunk stream into parts of exactly ``part_size`` bytes (the last may be less), filled into at
    most ``buffers`` reusable bytearrays: a buffer is refilled only after ``release``, so memory stays fixed
    and the allocator does not churn."""

    def __init__(self, chunks: Iterable[bytes], part_size: int, buffers: int) -> None:
        self.chunks = chunks
        self.part_size = part_size
        self.spare = buffers
        self.free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()

    def release(self, part: bytearray) -> None:
        if len(part) == self.part_size:
            self.free.put(part)

    def _take(self) -> bytearray:
        if self.spare:
            self.spare -= 1
            return bytearray(self.part_size)
        return self.free.get()

    def __iter__(self) -> Iterator[bytearray]:
        buffer: bytearray | None = None
        filled = 0
        for chunk in self.chunks:
            view = memoryview(chunk)
            while view:
                if buffer is None:
                    buffer, filled = self._take(), 0
                take = min(len(view), self.part_size - filled)
                buffer[filled:filled + take] = view[:take]
                filled += take
                view = view[take:]
                if filled == self.part_size:
                    yield buffer
                    buffer = None
        if buffer is not None:
            del buffer[filled:]
            yield buffer


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def call(action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one S3 call; a failure becomes ``StorageError`` naming the action and keeping the S3 error text."""
    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"{action} failed: {describe(exc)}") from exc


def multipart_upload(client: Any, bucket: str, key: str, parts: Iterable[bytearray], extra: dict[str, Any],
                     concurrency: int, release: Callable[[bytearray], None] = lambda part: None,
                     before_complete: Callable[[], None] = lambda: None) -> None:
    """Upload ``parts`` in parallel as one multipart upload, handing each buffer to ``release`` once sent;
    abort the upload on any failure (source, S3 or ``before_complete``)."""
    created = call(f"CreateMultipartUpload {key}", client.create_multipart_upload, Bucket=bucket, Key=key,
                   **extra)
    upload_id = created["UploadId"]
    try:
        etags = _upload_parts(client, bucket, key, upload_id, parts, concurrency, release)
        before_complete()
        call(f"CompleteMultipartUpload {key}", client.complete_multipart_upload, Bucket=bucket, Key=key,
             UploadId=upload_id, MultipartUpload={"Parts": etags})
    except BaseException:
        _abort(client, bucket, key, upload_id)
        raise


def _upload_parts(client: Any, bucket: str, key: str, upload_id: str, parts: Iterable[bytearray],
                  concurrency: int, release: Callable[[bytearray], None]) -> list[dict[str, Any]]:
    slots = threading.BoundedSemaphore(concurrency)
    failed = threading.Event()
    futures: list[Future[dict[str, Any]]] = []

    def settle(future: Future[dict[str, Any]]) -> None:
        if future.cancelled() or future.exception() is not None:
            failed.set()
        slots.release()

    def send(number: int, body: bytearray) -> dict[str, Any]:
        try:
            answer = call(f"UploadPart {number} of {key}", client.upload_part, Bucket=bucket, Key=key,
                          UploadId=upload_id, PartNumber=number, Body=body)
        finally:
            release(body)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="s3-part")
    try:
        for number, body in enumerate(parts, start=1):
            slots.acquire()
            if failed.is_set():
                slots.release()
                break
            future = pool.submit(send, number, body)
            future.add_done_callback(settle)
            futures.append(future)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [future.result() for future in futures]


def _abort(client: Any, bucket: str, key: str, upload_id: str) -> None:
    with contextlib.suppress(ClientError, BotoCoreError):
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

