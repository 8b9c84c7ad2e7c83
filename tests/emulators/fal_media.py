"""Real small media for the fal emulator: an H.264 MP4 made with PyAV, PNG/JPEG made with Pillow."""

from __future__ import annotations

import io
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import av
from PIL import Image

VIDEO = {"width": 64, "height": 48, "fps": 8, "num_frames": 8}
IMAGE_NAME = re.compile(r"^image/(\d+)x(\d+)\.(png|jpeg)$")


def make_mp4(width: int, height: int, fps: int, frames: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            shade = 40 + index * 20
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), (shade, 90, 200 - shade)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def make_image(width: int, height: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format=fmt.upper())
    return buffer.getvalue()


class MediaStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, tuple[bytes, str]] = {
            "video.mp4": (make_mp4(VIDEO["width"], VIDEO["height"], VIDEO["fps"], VIDEO["num_frames"]),
                          "video/mp4"),
        }

    def video_file(self, base_url: str) -> dict[str, Any]:
        data = self._files["video.mp4"][0]
        return {"url": f"{base_url}/media/video.mp4", "content_type": "video/mp4", "file_name": "video.mp4",
                "file_size": len(data), **VIDEO, "duration": VIDEO["num_frames"] / VIDEO["fps"]}

    def get(self, name: str) -> tuple[bytes, str] | None:
        with self._lock:
            if name in self._files:
                return self._files[name]
        match = IMAGE_NAME.match(name)
        if not match:
            return None
        width, height = min(int(match.group(1)), 2048), min(int(match.group(2)), 2048)
        found = (make_image(width, height, match.group(3)), f"image/{match.group(3)}")
        with self._lock:
            self._files[name] = found
        return found

    def put(self, data: bytes, content_type: str) -> str:
        name = f"uploads/{uuid.uuid4().hex}"
        with self._lock:
            self._files[name] = (data, content_type)
        return name

    def token(self, base_url: str) -> dict[str, str]:
        expires = datetime.now(UTC) + timedelta(hours=1)
        return {"token": "emulator-cdn-token", "token_type": "Bearer", "base_url": base_url,
                "expires_at": expires.isoformat()}
