"""The fal emulator's media: its result video, result images of any asked-for size, and uploaded files."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.common.media import image_bytes, mp4_bytes

VIDEO = {"width": 64, "height": 48, "fps": 8, "num_frames": 8}
IMAGE_NAME = re.compile(r"^image/(\d+)x(\d+)\.(png|jpeg)$")


class MediaStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, tuple[bytes, str]] = {
            "video.mp4": (mp4_bytes(VIDEO["width"], VIDEO["height"], VIDEO["num_frames"], VIDEO["fps"]),
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
        found = (image_bytes((width, height), (200, 120, 40), match.group(3)), f"image/{match.group(3)}")
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
