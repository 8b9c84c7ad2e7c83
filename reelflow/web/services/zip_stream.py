"""Several runs' videos as one zip, written as it is sent (stored, not compressed: MP4 is compressed already)."""

from __future__ import annotations

import functools
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from reelflow.errors import ReelflowError
from reelflow.storage import Storage, get_storage
from reelflow.storage.source import file_chunks
from reelflow.store.views import OutputView, RunView

PROMPT_WORDS = 5


class _Pipe:
    """A write-only file whose writes are collected for the response; zipfile sees it as unseekable."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def file_name(run: RunView) -> str:
    """``<date>-<model>-<prompt words>-<short id>.mp4``: only a-z, 0-9, '-' and '.'."""
    prompt = run.spec.get("prompt") if run.kind == "video" else (run.inputs or {}).get("prompt")
    words = _slug(" ".join(str(prompt or "").split()[:PROMPT_WORDS]))[:60].strip("-")
    parts = [run.created_at.strftime("%Y-%m-%d"), _slug(run.model)[:40], words, run.run_id[:8]]
    return "-".join(part for part in parts if part) + ".mp4"


def _video_chunks(video: OutputView | None, storage: Callable[[], Storage]) -> Iterator[bytes] | str:
    """The video's bytes from its file here, or else from the configured storage (an R2 bucket) by its key; or
    why it cannot be read."""
    if video is None:
        return "no video yet"
    if video.path and Path(video.path).is_file():
        return file_chunks(Path(video.path))
    try:
        return storage().read_chunks(video.key)
    except (ReelflowError, httpx.HTTPError) as exc:  # storage gone or its Block unreadable: say so in the zip
        return f"the video could not be read from storage: {exc}"


def video_zip(runs: list[RunView]) -> Iterator[bytes]:
    """The zip's bytes, a chunk at a time; a run whose video cannot be read is named in ``missing.txt``."""
    pipe = _Pipe()
    missing: list[str] = []
    storage = functools.cache(get_storage)
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[arg-type]
        for run in runs:
            chunks = _video_chunks(run.video, storage)
            if isinstance(chunks, str):
                missing.append(f"{run.run_id}: {chunks}")
                continue
            with archive.open(file_name(run), "w", force_zip64=True) as target:
                for chunk in chunks:
                    target.write(chunk)
                    yield pipe.take()
        if missing:
            archive.writestr("missing.txt", "\n".join(missing) + "\n")
    yield pipe.take()
