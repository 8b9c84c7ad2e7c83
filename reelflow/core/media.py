"""Reading facts (size, frames, fps, duration) from stored media files."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av


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
