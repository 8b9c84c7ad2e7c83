"""The object key scheme shared by local storage and R2: content-addressed, so one output lands once."""

from __future__ import annotations

import mimetypes

EXTENSIONS = {"video/mp4": ".mp4", "video/webm": ".webm", "image/png": ".png", "image/jpeg": ".jpg",
              "image/webp": ".webp", "image/gif": ".gif"}


def extension_for(content_type: str, filename: str | None = None) -> str:
    if content_type in EXTENSIONS:
        return EXTENSIONS[content_type]
    if filename and "." in filename:
        return "." + filename.rsplit(".", 1)[1].lower()
    return mimetypes.guess_extension(content_type) or ".bin"


def object_key(sha256: str, content_type: str, filename: str | None = None) -> str:
    """``videos/ab/abcdef….mp4``: folder by media kind, two-character fan-out, the content's sha256."""
    kind = content_type.split("/", 1)[0]
    folder = {"video": "videos", "image": "images"}.get(kind, "files")
    return f"{folder}/{sha256[:2]}/{sha256}{extension_for(content_type, filename)}"
