"""Reading a task's input image (a stored file or an http(s) URL) and writing a provider's output to scratch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx

from reelflow.core.domain import MediaRef
from reelflow.errors import ProviderError, SpecError
from reelflow.settings import get_settings


async def read_media(image: MediaRef) -> bytes:
    """The image's bytes, at most ``max_input_bytes``."""
    limit = get_settings().max_input_bytes
    if image.path:
        try:
            return await asyncio.to_thread(Path(image.path).read_bytes)
        except FileNotFoundError:
            raise SpecError("image", f"input file {image.path} is gone from storage") from None
    if not image.url or not image.url.startswith(("http://", "https://")):
        raise SpecError("image", f"cannot read {image.describe()}: not a local file or an http(s) URL")
    chunks, size = [], 0
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True) as http, \
            http.stream("GET", image.url, headers=image.headers or {}) as response:
        if response.status_code != 200:
            raise ProviderError(f"reading the input image answered HTTP {response.status_code}")
        async for chunk in response.aiter_bytes(1 << 20):
            size += len(chunk)
            if size > limit:
                raise SpecError("image", f"input is larger than {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def scratch_dir(run_id: str) -> Path:
    """Working files of a run; cache_r2 deletes each file once it is stored."""
    return get_settings().home / "work" / run_id


async def write_stream(chunks: AsyncIterator[bytes], dest: Path) -> Path:
    """Stream ``chunks`` into ``dest`` (through a ``.part`` file, so a broken download never looks finished)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    written = 0
    async with await anyio.open_file(part, "wb") as fh:
        async for chunk in chunks:
            written += len(chunk)
            await fh.write(chunk)
    if written == 0:
        part.unlink(missing_ok=True)
        raise ProviderError(f"the output {dest.name} was empty")
    part.replace(dest)
    return dest
