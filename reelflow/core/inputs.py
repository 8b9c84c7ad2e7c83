"""Reading and checking the input image (local path or URL) before anything is queued."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, UnidentifiedImageError

from reelflow.core.netguard import check_public_url
from reelflow.errors import ImageTooLargeError, SpecError
from reelflow.settings import get_settings

MAX_REDIRECTS = 5
MAX_PIXELS = 64_000_000
IMAGE_TYPES = {"PNG": ("image/png", ".png"), "JPEG": ("image/jpeg", ".jpg"), "WEBP": ("image/webp", ".webp")}


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
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageTooLargeError(field, f"'{source}' has too many pixels ({img.width}x{img.height}); "
                                         f"at most {MAX_PIXELS} allowed")
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            fmt, (width, height) = img.format, img.size
    except SpecError:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLargeError(field, f"'{source}' has too many pixels; at most {MAX_PIXELS} allowed") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SpecError(field, f"'{source}' is not a readable image ({type(exc).__name__})") from None
    if fmt not in IMAGE_TYPES:
        allowed = ", ".join(IMAGE_TYPES)
        raise SpecError(field, f"'{source}' is a {fmt} image; allowed formats: {allowed}")
    content_type, ext = IMAGE_TYPES[fmt]
    return InputImage(data=data, sha256=hashlib.sha256(data).hexdigest(), width=width, height=height,
                      content_type=content_type, extension=ext, source=source)


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
    with httpx.Client(timeout=settings.download_timeout_s, follow_redirects=False) as client:
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
