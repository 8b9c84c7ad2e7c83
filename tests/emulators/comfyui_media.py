"""Real media for the ComfyUI emulator: a small H.264 MP4 and a PNG preview, made once per process."""

from __future__ import annotations

import io
import struct
from functools import cache

import av
from PIL import Image


@cache
def sample_png(size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@cache
def sample_mp4(width: int = 64, height: int = 64, frames: int = 17, fps: int = 16) -> bytes:
    """An H.264 MP4 with a moving bar, so the file decodes to real frames."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = Image.new("RGB", (width, height), (20, 20, 60))
            image.paste((240, 200, 40), (index * width // frames, 0, index * width // frames + 8, height))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def preview_frame() -> bytes:
    """A binary websocket frame as ComfyUI sends it: event 1 (preview), format 2 (PNG), then the image."""
    return struct.pack(">II", 1, 2) + sample_png()
