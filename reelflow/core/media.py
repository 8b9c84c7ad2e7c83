"""Reading facts (size, frames, fps, duration) from stored media files."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image


@dataclass(frozen=True)
class VideoFacts:
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float


def probe_video(path: Path) -> VideoFacts:
    """Decode every frame (cheap for short clips) so the frame count is exact, not a header guess."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        frames = sum(1 for _ in container.decode(stream))
        return VideoFacts(width=stream.width, height=stream.height, fps=float(rate), frames=frames,
                          duration_s=round(frames / float(rate), 6) if rate else 0.0)


def probe_image(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def first_frame_jpeg(path: Path, out_path: Path, max_side: int = 640) -> None:
    """A small poster image from the first frame of a video."""
    with av.open(str(path)) as container:
        frame = next(container.decode(container.streams.video[0]))
        image = frame.to_image()
    image.thumbnail((max_side, max_side))
    image.save(out_path, "JPEG", quality=85)
