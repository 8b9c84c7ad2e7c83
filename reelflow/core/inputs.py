"""Reading and checking the input image (local path or URL) before anything is queued."""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, UnidentifiedImageError

from reelflow.core.netguard import GuardedTransport, check_public_url
from reelflow.errors import ImageTooLargeError, SpecError
from reelflow.settings import get_settings

MAX_REDIRECTS = 5
IMAGE_TYPES = {"PNG": ("image/png", ".png"), "JPEG": ("image/jpeg", ".jpg"), "WEBP": ("image/webp", ".webp")}
DECODED_KEPT = 256
_decoded: OrderedDict[tuple[str, int], tuple[str, int, int]] = OrderedDict()
"""(sha256, pixel limit) of images that decoded to the last pixel, with their format and size: an upload used
by many runs (``POST /api/runs`` with the same ``upload:<id>``) is decoded once, not once per run."""


@dataclass(frozen=True)
class InputImage:
    data: bytes
    sha256: str
    width: int
    height: int
    content_type: str
    extension: str
    source: str


def load_image(source: str) -> InputImage:
    """Read an image from a path or an http(s) URL and check that it is a PNG, JPEG or WebP image."""
    data = _download(source) if source.startswith(("http://", "https://")) else _read_file(source)
    return inspect_image(data, source)


def inspect_image(data: bytes, source: str, field: str = "image") -> InputImage:
    """Check the image is a PNG, JPEG or WebP within REELFLOW_MAX_INPUT_PIXELS that decodes to the last pixel."""
    allowed = ", ".join(IMAGE_TYPES)
    max_pixels = get_settings().max_input_pixels
    sha256 = hashlib.sha256(data).hexdigest()
    if (known := _decoded.get((sha256, max_pixels))) is not None:
        fmt, width, height = known
        content_type, ext = IMAGE_TYPES[fmt]
        return InputImage(data=data, sha256=sha256, width=width, height=height, content_type=content_type,
                          extension=ext, source=source)
    too_many = f"at most {max_pixels} pixels are allowed (REELFLOW_MAX_INPUT_PIXELS)"
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (width, height) = img.format, img.size
            if fmt not in IMAGE_TYPES:
                raise SpecError(field, f"'{source}' is a {fmt} image; allowed formats: {allowed}")
            if width * height > max_pixels:
                raise ImageTooLargeError(field, f"'{source}' has too many pixels ({width}x{height}); {too_many}")
            img.load()
    except SpecError:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLargeError(field, f"'{source}' has too many pixels; {too_many}") from None
    except UnidentifiedImageError:
        raise SpecError(field, f"'{source}' is not an image in a format reelflow reads; allowed formats: "
                        f"{allowed}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise SpecError(field, f"'{source}' is a damaged or incomplete image ({exc}); give a complete {allowed} "
                        "file") from None
    _decoded[(sha256, max_pixels)] = (fmt, width, height)
    while len(_decoded) > DECODED_KEPT:
        _decoded.popitem(last=False)
    content_type, ext = IMAGE_TYPES[fmt]
    return InputImage(data=data, sha256=sha256, width=width, height=height, content_type=content_type,
                      extension=ext, source=source)


def _read_file(source: str) -> bytes:
    path = Path(source).expanduser()
    if not path.is_file():
        raise SpecError("image", f"file not found: {source}")
    limit = get_settings().max_input_bytes
    size = path.stat().st_size
    if size > limit:
        raise SpecError("image", f"file is {size} bytes; at most {limit} allowed")
    return path.read_bytes()


def _download(url: str) -> bytes:
    settings = get_settings()
    limit = settings.max_input_bytes
    transport = GuardedTransport(field="image", allow_private=settings.allow_private_urls)
    with httpx.Client(timeout=settings.download_timeout_s, follow_redirects=False, transport=transport) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_public_url(url, field="image", allow_private=settings.allow_private_urls)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = str(response.next_request.url) if response.next_request else url
                        continue
                    if response.status_code != 200:
                        raise SpecError("image", f"URL answered {response.status_code} "
                                        f"{response.reason_phrase}: {url}")
                    chunks: list[bytes] = []
                    received = 0
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                        if received > limit:
                            raise SpecError("image", f"URL body is over {limit} bytes: {url}")
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.HTTPError as exc:
                raise SpecError("image", f"cannot fetch {url}: {type(exc).__name__}: {exc}") from None
    raise SpecError("image", f"too many redirects (over {MAX_REDIRECTS}) from {url}")
