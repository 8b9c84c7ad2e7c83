"""The ComfyUI emulator's media: its output video and PNG (or, from an uploaded input, a scaled image or an
interpolated video), and a binary preview frame."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from tests.emulators.common.media import image_bytes, mp4_bytes


def sample_png() -> bytes:
    return image_bytes((32, 32), (200, 80, 40))


def sample_mp4() -> bytes:
    return mp4_bytes(64, 64, 17, 16)


def preview_frame() -> bytes:
    """A binary websocket frame as ComfyUI sends it: event 1 (preview), format 2 (PNG), then the image."""
    return struct.pack(">II", 1, 2) + sample_png()


def scaled_png(source: Path, factor: float) -> bytes:
    """The uploaded image scaled by ``factor`` (ImageScaleBy), as SaveImage writes it."""
    with Image.open(source) as image:
        size = (round(image.width * factor), round(image.height * factor))
        buffer = io.BytesIO()
        image.convert("RGB").resize(size).save(buffer, format="PNG")
    return buffer.getvalue()


def interpolated_mp4(source: Path, multiplier: int) -> bytes:
    """The uploaded video with each frame shown ``multiplier`` times at ``multiplier`` times its frame rate (what a
    frame interpolator makes, without the new in-between pixels): same length, more frames."""
    buffer = io.BytesIO()
    with av.open(str(source)) as reader, av.open(buffer, mode="w", format="mp4") as writer:
        incoming = reader.streams.video[0]
        rate = Fraction(incoming.average_rate or 16) * multiplier
        stream = writer.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = incoming.width, incoming.height, "yuv420p"
        for frame in reader.decode(incoming):
            image = frame.to_image()
            for _ in range(multiplier):
                writer.mux(stream.encode(av.VideoFrame.from_image(image)))
        writer.mux(stream.encode())
    return buffer.getvalue()
