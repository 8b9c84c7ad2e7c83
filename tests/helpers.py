"""Small helpers shared by tests: running the CLI, making images, a throwaway HTTP file server."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

REELFLOW = [sys.executable, "-m", "reelflow.cli.main"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REELFLOW, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def run_cli_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    done = run_cli(*args, "--json", env=env)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}") from exc


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
