"""A tiny multipart/form-data reader for emulators (exact bytes, no extra dependency)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    data: bytes


def _param(header: str, key: str) -> str | None:
    match = re.search(rf'(?:^|;)\s*{key}="([^"]*)"', header, re.IGNORECASE)
    return match.group(1) if match else None


def parse_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    """Form parts by field name; an empty dict when the body is not multipart."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match or not content_type.lower().startswith("multipart/form-data"):
        return {}
    parts: dict[str, Part] = {}
    for chunk in body.split(b"--" + match.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _param(disposition, "name")
        if name is not None:
            parts[name] = Part(name, _param(disposition, "filename"), data.removesuffix(b"\r\n"))
    return parts
