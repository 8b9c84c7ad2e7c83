"""A small JPEG poster for a stored output: first frame of a video, or a thumbnail of an image."""

from __future__ import annotations

import io

import av
from PIL import Image

from reelflow.core.domain import MediaRef
from reelflow.errors import StorageError
from reelflow.storage.source import redact, url_chunks

POSTER_SIDE = 640
NETWORK_TIMEOUT_S = 30.0


def make_poster(media: MediaRef, max_side: int = POSTER_SIDE) -> bytes:
    """JPEG bytes of the poster. A remote video is opened by FFmpeg over HTTP, which reads only what the
    first frame needs (range requests), not the whole file."""
    source = media.path or media.url
    if not source:
        raise StorageError(f"no poster source: {media.describe()}")
    if media.content_type.startswith("image/"):
        return _jpeg(_open_image(media), max_side)
    headers = "".join(f"{name}: {value}\r\n" for name, value in (media.headers or {}).items())
    options = {"headers": headers} if headers and not media.path else {}
    try:
        with av.open(source, options=options, timeout=NETWORK_TIMEOUT_S) as container:
            image = next(container.decode(container.streams.video[0])).to_image()
    except (av.FFmpegError, StopIteration, IndexError) as exc:
        raise StorageError(f"no first frame in {source if media.path else redact(source)}: {exc}") from exc
    return _jpeg(image, max_side)


def _open_image(media: MediaRef) -> Image.Image:
    if media.path:
        return Image.open(media.path)
    with url_chunks(str(media.url), media.headers) as chunks:
        return Image.open(io.BytesIO(b"".join(chunks)))


def _jpeg(image: Image.Image, max_side: int) -> bytes:
    with image:
        poster = image.convert("RGB")
    poster.thumbnail((max_side, max_side))
    out = io.BytesIO()
    poster.save(out, "JPEG", quality=85)
    return out.getvalue()
