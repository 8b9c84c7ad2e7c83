"""Real small media the emulators serve and the tests upload: solid-colour images (Pillow) and H.264 MP4s with
a moving bar (PyAV), so every file decodes to real pixels and frames."""

from __future__ import annotations

import io
from functools import cache

import av
from PIL import Image

Colour = tuple[int, int, int]


@cache
def image_bytes(size: tuple[int, int], colour: Colour, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt.upper())
    return buffer.getvalue()


def png_bytes(colour: Colour = (200, 90, 30), size: tuple[int, int] = (48, 32)) -> bytes:
    return image_bytes(size, colour, "PNG")


@cache
def mp4_bytes(width: int, height: int, frames: int, fps: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = Image.new("RGB", (width, height), (20, 20, 60))
            image.paste((240, 200, 40), (index * width // frames, 0, index * width // frames + 8, height))
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())
    return buffer.getvalue()
