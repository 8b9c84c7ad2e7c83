"""The object key scheme shared by local storage and R2, so that one output lands once.

* Content known before the write (a local file, bytes, an input, a poster, or a stream whose sha256 is given):
  the content key ``videos/ab/<sha256>.mp4`` (``object_key``). The same bytes share one object.
* A provider output streamed from its URL, whose hash is known only after the last byte: the run's key
  ``runs/<run_id>/<role>.mp4`` (``run_object_key``), so it can be written straight to its final
  key. A run id stays the same across task retries and ``reelflow resume`` (so the output lands once) and is
  new for a ``--force`` re-render (so a new render never meets an older one's object).
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from urllib.parse import quote

EXTENSIONS = {"video/mp4": ".mp4", "video/webm": ".webm", "image/png": ".png", "image/jpeg": ".jpg",
              "image/webp": ".webp", "image/gif": ".gif"}
# Either kind of key, as ``object_key`` or ``run_object_key`` make them; group 1 is the extension.
STORED_KEY = re.compile(r"^(?:(?:videos|images|files)/[0-9a-f]{2}/[0-9a-f]{64}|runs/[0-9A-Za-z_%-]{1,160}/"
                        r"[0-9A-Za-z_%-]{1,64})(\.[a-z0-9]{1,8})$")


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


@dataclass(frozen=True)
class RunKey:
    """Which output of which run."""

    run_id: str
    role: str


def run_object_key(run_key: RunKey, content_type: str, filename: str | None = None) -> str:
    """``runs/<run_id>/video.mp4``."""
    return f"runs/{_segment(run_key.run_id)}/{_segment(run_key.role)}{extension_for(content_type, filename)}"


def _segment(value: str) -> str:
    """One path segment, percent-encoded (dots too), so no id can reach outside its folder or look like another."""
    if not value:
        raise ValueError("an empty run id or role cannot name a stored object")
    return quote(value, safe="-_").replace(".", "%2E")
