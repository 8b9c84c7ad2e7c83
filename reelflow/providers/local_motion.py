"""The offline CPU "model": an eased pan and zoom over a still image, encoded to H.264 with PyAV.

Not an AI model. Each frame samples a moving crop window of the source with sub-pixel precision
(``Image.transform`` with ``EXTENT``), so the motion is smooth; the window keeps the output aspect,
so a source of another aspect is cropped, never stretched.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from reelflow.errors import RenderCancelledError

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Window:
    cx: float
    cy: float
    w: float
    h: float

    def box(self) -> tuple[float, float, float, float]:
        return (self.cx - self.w / 2, self.cy - self.h / 2, self.cx + self.w / 2, self.cy + self.h / 2)


def ease_in_out(t: float) -> float:
    """Cubic ease-in-out: velocity 0 at both ends."""
    return 4 * t**3 if t < 0.5 else 1 - (-2 * t + 2) ** 3 / 2


def _largest_window(src_w: int, src_h: int, aspect: float) -> tuple[float, float]:
    return (src_w, src_w / aspect) if src_w / src_h <= aspect else (src_h * aspect, src_h)


def plan_motion(src_w: int, src_h: int, out_w: int, out_h: int, seed: int, zoom: float = 1.18) -> tuple[Window, Window]:
    """Start and end windows: zoom in or out by ``zoom`` while drifting toward a seeded corner."""
    rng = random.Random(seed)
    big_w, big_h = _largest_window(src_w, src_h, out_w / out_h)
    small_w, small_h = big_w / zoom, big_h / zoom
    wide = Window(src_w / 2, src_h / 2, big_w, big_h)
    slack_x, slack_y = (big_w - small_w) / 2, (big_h - small_h) / 2
    tight = Window(src_w / 2 + rng.uniform(-1, 1) * slack_x, src_h / 2 + rng.uniform(-1, 1) * slack_y,
                   small_w, small_h)
    return (wide, tight) if rng.random() < 0.5 else (tight, wide)


def _window_at(start: Window, end: Window, t: float) -> Window:
    e = ease_in_out(t)
    return Window(*(a + (b - a) * e for a, b in zip(
        (start.cx, start.cy, start.w, start.h), (end.cx, end.cy, end.w, end.h), strict=True)))


def render_kenburns(image_path: Path, out_path: Path, *, width: int, height: int, fps: int, frames: int,
                    seed: int, progress: ProgressFn | None = None,
                    cancel: threading.Event | None = None) -> None:
    """Write an H.264 MP4 of exactly ``frames`` frames at ``fps`` and ``width``x``height``."""
    with Image.open(image_path) as opened:
        source = opened.convert("RGB")
    # Pre-shrink a huge source so each frame samples at most ~2x the output size.
    limit = 2 * max(width, height)
    if max(source.size) > limit:
        source.thumbnail((limit, limit), Image.Resampling.LANCZOS)
    start, end = plan_motion(source.width, source.height, width, height, seed)
    tmp_path = out_path.with_suffix(".part.mp4")
    container = av.open(str(tmp_path), mode="w", format="mp4")
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20", "movflags": "+faststart"}
        for index in range(frames):
            if cancel is not None and cancel.is_set():
                raise RenderCancelledError("render cancelled")
            t = index / (frames - 1) if frames > 1 else 0.0
            frame_img = source.transform((width, height), Image.Transform.EXTENT,
                                         _window_at(start, end, t).box(), Image.Resampling.BICUBIC)
            frame = av.VideoFrame.from_image(frame_img)
            container.mux(stream.encode(frame))
            if progress is not None:
                progress(index + 1, frames)
        container.mux(stream.encode(None))
    except BaseException:
        container.close()
        tmp_path.unlink(missing_ok=True)
        raise
    container.close()
    tmp_path.replace(out_path)
