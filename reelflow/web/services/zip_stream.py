"""Several runs' videos as one zip, written as it is sent (stored, not compressed: MP4 is compressed already)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from reelflow.store.views import RunView

CHUNK = 1 << 20
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


def video_zip(runs: list[RunView]) -> Iterator[bytes]:
    """The zip's bytes, a chunk at a time; a run without a local video file is named in ``missing.txt``."""
    pipe = _Pipe()
    missing: list[str] = []
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[arg-type]
        for run in runs:
            video = run.video
            path = Path(video.path) if video is not None and video.path else None
            if path is None or not path.is_file():
                missing.append(f"{run.run_id}: {'no video yet' if video is None else 'the video is not stored here'}")
                continue
            with path.open("rb") as source, archive.open(file_name(run), "w", force_zip64=True) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    yield pipe.take()
        if missing:
            archive.writestr("missing.txt", "\n".join(missing) + "\n")
    yield pipe.take()
