"""Joining clips into one MP4 and taking a clip's last frame, with PyAV (no ffmpeg binary).

Frames are streamed: a clip is decoded one frame at a time and only the crossfade's tail of the
previous clip (``crossfade_s`` × fps frames) is held, so memory does not grow with clip length.
Every clip is letterboxed into one size (never stretched) and resampled to one fps by frame timing:
output frame ``k`` of a clip shows the input frame on screen at ``k / fps``. Audio is not carried over.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageOps

from reelflow.core.domain import MediaFacts
from reelflow.core.media import probe_video
from reelflow.errors import RenderCancelledError, SpecError

ProgressFn = Callable[[int, int], None]
"""(clips finished, clips) after each clip."""
MAX_SIDE = 4096


def _rate(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise SpecError("videos", f"cannot tell the frame rate of {stream.container.name}")
    return Fraction(rate)


def _first_clip_format(path: Path) -> tuple[tuple[int, int], Fraction]:
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise SpecError("videos", f"{path.name} has no video stream")
        stream = container.streams.video[0]
        return (stream.width, stream.height), _rate(stream)


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    return ImageOps.pad(image, size, method=Image.Resampling.BICUBIC, color=(0, 0, 0))


def _resampled(path: Path, size: tuple[int, int], fps: Fraction,
               cancel: threading.Event | None) -> Iterator[Image.Image]:
    """The clip's frames at ``fps`` and ``size``: output frame k is the input frame showing at time k / fps."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise SpecError("videos", f"{path.name} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frame_s = 1 / _rate(stream)
        start: Fraction | None = None
        current: tuple[Fraction, Image.Image] | None = None
        k = 0
        for index, frame in enumerate(container.decode(stream)):
            if cancel is not None and cancel.is_set():
                raise RenderCancelledError("concat cancelled")
            at = Fraction(frame.pts) * stream.time_base if frame.pts is not None else index * frame_s
            start = at if start is None else start
            at -= start
            if current is not None:
                while k / fps < at:
                    yield current[1]
                    k += 1
            current = (at, _fit(frame.to_image(), size))
        if current is None:
            raise SpecError("videos", f"{path.name} has no frames")
        end = current[0] + frame_s
        while k / fps < end - 1 / (2 * fps):
            yield current[1]
            k += 1


def _even(size: tuple[int, int]) -> tuple[int, int]:
    return (size[0] + size[0] % 2, size[1] + size[1] % 2)


def _check_format(size: tuple[int, int] | None, fps: float | None, crossfade_s: float) -> None:
    if size is not None:
        for name, value in zip(("width", "height"), size, strict=True):
            if not 2 <= value <= MAX_SIDE or value % 2:
                raise SpecError(name, f"must be an even number of pixels from 2 to {MAX_SIDE}, not {value}")
    if fps is not None and not 1 <= fps <= 120:
        raise SpecError("fps", f"must be between 1 and 120, not {fps:g}")
    if crossfade_s < 0:
        raise SpecError("crossfade", f"must be 0 or more seconds, not {crossfade_s:g}")


def concat_videos(clips: Sequence[Path], out: Path, *, crossfade_s: float = 0.0,
                  size: tuple[int, int] | None = None, fps: float | None = None,
                  progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> MediaFacts:
    """Join ``clips`` in order into an H.264 yuv420p MP4 (moov first) at ``size`` and ``fps`` (the first clip's
    by default), crossfading ``crossfade_s`` between consecutive clips; the facts are read back from ``out``."""
    if not clips:
        raise SpecError("videos", "concat needs at least one clip")
    _check_format(size, fps, crossfade_s)
    first_size, first_fps = _first_clip_format(Path(clips[0]))
    out_size = size or _even(first_size)
    out_fps = Fraction(fps).limit_denominator(1001) if fps is not None else first_fps
    overlap = round(crossfade_s * out_fps) if len(clips) > 1 else 0
    tmp = out.with_suffix(".part.mp4")
    container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
    try:
        stream = container.add_stream("libx264", rate=out_fps)
        stream.width, stream.height, stream.pix_fmt = *out_size, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        written = 0

        def emit(image: Image.Image) -> None:
            nonlocal written
            frame = av.VideoFrame.from_image(image)
            frame.pts = written
            container.mux(stream.encode(frame))
            written += 1

        tail: deque[Image.Image] = deque()
        for number, clip in enumerate(clips, start=1):
            frames = _resampled(Path(clip), out_size, out_fps, cancel)
            incoming = list(tail)
            tail.clear()
            outgoing = overlap if number < len(clips) else 0
            count = 0
            for image in frames:
                if count < len(incoming):
                    image = Image.blend(incoming[count], image, (count + 1) / (len(incoming) + 1))
                count += 1
                tail.append(image)
                if len(tail) > outgoing:
                    emit(tail.popleft())
            if count < len(incoming) + outgoing:
                raise SpecError("crossfade", f"{crossfade_s:g} s is longer than clip {number} ({Path(clip).name}) "
                                             f"can take; give each clip at least the crossfade (middle clips "
                                             f"twice it), or a shorter crossfade")
            if progress is not None:
                progress(number, len(clips))
        while tail:
            emit(tail.popleft())
        container.mux(stream.encode(None))
    except BaseException:
        container.close()
        tmp.unlink(missing_ok=True)
        raise
    container.close()
    tmp.replace(out)
    facts = probe_video(out)
    return MediaFacts(width=facts.width, height=facts.height, fps=facts.fps, frames=facts.frames,
                      duration_s=facts.duration_s)


def last_frame(video: Path) -> bytes:
    """PNG bytes of the last frame the decoder gives (decoded to the end, not a seek to a keyframe)."""
    with av.open(str(video)) as container:
        if not container.streams.video:
            raise SpecError("video", f"{Path(video).name} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        final = None
        for frame in container.decode(stream):
            final = frame
        if final is None:
            raise SpecError("video", f"{Path(video).name} has no frames")
        buffer = io.BytesIO()
        final.to_image().save(buffer, format="PNG")
        return buffer.getvalue()
