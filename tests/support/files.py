"""Files a test makes, hashes, lists and serves: a gradient image, a SHA-256, a tree's files, an HTTP file server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image


def make_image(path: Path, size: tuple[int, int] = (640, 400), fmt: str = "PNG") -> Path:
    image = Image.new("RGB", size)
    pixels = image.load()
    for x in range(size[0]):
        for y in range(size[1]):
            pixels[x, y] = (x * 255 // size[0], y * 255 // size[1], (x ^ y) & 255)
    image.save(path, fmt)
    return path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@contextmanager
def file_server(root: Path, seen: list[str] | None = None) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 (404 for anything missing); yields the base URL. Every path
    asked for is appended to ``seen`` when given."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            if seen is not None:
                seen.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
