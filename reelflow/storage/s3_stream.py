"""Uploading to one S3 key through boto3's managed transfer (s3transfer): a stream, hashed on the way, or a file.

``HashingReader`` turns a chunk stream into the file-like object boto3 reads: ``read(n)`` gives exactly ``n``
bytes until the end, so every part but the last has ``part_size`` bytes (R2 requires equal parts). A file
goes by its path, each part read from disk by the thread that sends it. boto3 does the rest: one
``PutObject`` up to ``part_size``, else a parallel multipart upload (a stream's parts held in memory, at most
``concurrency`` of them plus the one being read), each part's failed request retried by botocore's retry
config, and the multipart upload aborted on any failure (source, S3, hash check) by s3transfer's failure
cleanup, so no half object and no orphan parts are left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import BotoCoreError, ClientError

from reelflow.errors import StorageError

MiB = 1024 * 1024


@dataclass(frozen=True)
class TransferSettings:
    """Part size and parallelism of uploads, and how often a failed source is read again.

    12 MiB parts, 4 at a time: against 8 MiB x 8 it sends a third fewer requests for the same bytes (less CPU
    in botocore per byte, measured with ``benchmarks.cache_r2``) and holds about 60 MiB of a stream in
    memory. (``io_chunksize``, the other knob of ``TransferConfig``, applies to downloads only.)"""

    part_size: int = 12 * MiB
    concurrency: int = 4
    source_attempts: int = 3
    source_retry_wait_s: float = 1.0

    def transfer_config(self) -> TransferConfig:
        """boto3's classic (s3transfer) manager: parts of ``part_size`` (one ``PutObject`` up to that size),
        ``concurrency`` requests in flight and as many parts held in memory."""
        config = TransferConfig(multipart_threshold=self.part_size + 1, multipart_chunksize=self.part_size,
                                max_concurrency=self.concurrency, preferred_transfer_client="classic")
        config.max_in_memory_upload_chunks = self.concurrency
        return config


class HashingReader:
    """A chunk stream as a non-seekable binary reader, counting and hashing the bytes as they are read.

    ``known_sha256``: a hash this process has just computed from the same bytes; only the bytes are counted.
    ``expected_sha256``: checked when the stream ends, inside the read that finds the end, so a mismatch
    fails the upload before its last part (or its only ``PutObject``) is sent.
    """

    def __init__(self, chunks: Iterable[bytes], *, known_sha256: str | None = None,
                 expected_sha256: str | None = None) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self._known = known_sha256
        self._digest = None if known_sha256 else hashlib.sha256()
        self._expected = expected_sha256
        self._stopped: Callable[[], bool] = lambda: False
        self.size = 0
        self.ended = False

    @property
    def sha256(self) -> str:
        return self._known or self._digest.hexdigest()  # type: ignore[union-attr]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def stop_when(self, stopped: Callable[[], bool]) -> None:
        """Refuse further reads once ``stopped()`` is true: a failed upload does not read its source on."""
        self._stopped = stopped

    def read(self, size: int | None = -1) -> bytes:
        """Exactly ``size`` bytes (all that is left if ``size`` is None or negative), fewer only at the end."""
        if self._stopped():
            raise StorageError("the upload failed; its source is not read further")
        wanted = None if size is None or size < 0 else size
        pieces: list[memoryview] = []
        got = 0
        while not self.ended and (wanted is None or got < wanted):
            if not self._pending:
                chunk = next(self._chunks, None)
                self.ended = chunk is None
                self._pending = memoryview(chunk or b"")
                continue
            piece = self._pending if wanted is None else self._pending[:wanted - got]
            self._pending = self._pending[len(piece):]
            pieces.append(piece)
            got += len(piece)
        data = b"".join(pieces)
        self._count(data)
        return data

    def drain(self) -> None:
        """Hash the rest of the stream, keeping nothing."""
        while self.read(MiB):
            pass

    def _count(self, data: bytes) -> None:
        """Count and hash what a read returns (one hash call per part, not per network chunk); at the end,
        check the hash."""
        self.size += len(data)
        if self._digest:
            self._digest.update(data)
        if self.ended and self._expected and self.sha256 != self._expected:
            raise StorageError(f"content hash {self.sha256} does not match the expected {self._expected}")


def upload(client: Any, bucket: str, key: str, source: HashingReader | Path, extra: dict[str, Any],
           settings: TransferSettings) -> None:
    """Upload a stream, or a file by its path, to ``key`` with ``extra`` (ContentType, CacheControl,
    Metadata…) as boto3's ``upload_fileobj`` and ``upload_file`` do, keeping the transfer's future so that a
    stream stops being read as soon as the transfer failed (``upload_fileobj`` would read it to its end
    first). S3 errors become ``StorageError`` naming the operation; source and hash errors are raised as
    they are."""
    try:
        with create_transfer_manager(client, settings.transfer_config()) as manager:
            future = manager.upload(str(source) if isinstance(source, Path) else source, bucket, key,
                                    extra_args=extra)
            if isinstance(source, HashingReader):
                source.stop_when(future.done)
            future.result()
    except ClientError as exc:
        raise StorageError(f"{exc.operation_name} {key} failed: {describe(exc)}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"upload of {key} failed: {describe(exc)}") from exc


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def call(action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one S3 call; a failure becomes ``StorageError`` naming the action and keeping the S3 error text."""
    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"{action} failed: {describe(exc)}") from exc
