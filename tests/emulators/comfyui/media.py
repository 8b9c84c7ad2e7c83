"""The ComfyUI emulator's media: its output video and PNG, and a binary preview frame."""

from __future__ import annotations

import struct

from tests.emulators.common.media import image_bytes, mp4_bytes


def sample_png() -> bytes:
    return image_bytes((32, 32), (200, 80, 40))


def sample_mp4() -> bytes:
    return mp4_bytes(64, 64, 17, 16)


def preview_frame() -> bytes:
    """A binary websocket frame as ComfyUI sends it: event 1 (preview), format 2 (PNG), then the image."""
    return struct.pack(">II", 1, 2) + sample_png()
