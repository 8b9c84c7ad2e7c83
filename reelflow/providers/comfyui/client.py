"""Async ComfyUI client: short HTTP calls over httpx, progress over a websocket. No Prefect inside."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from PIL import Image, UnidentifiedImageError

from reelflow.errors import (
    ComfyBusyError,
    ComfyMissingModelsError,
    ComfyMissingNodesError,
    ComfySubmitUncertainError,
    ComfyUnreachableError,
    ProviderError,
    SpecError,
)
from reelflow.providers.comfyui.events import ProgressEvent
from reelflow.providers.comfyui.graph import Graph, ModelRef, class_of, nodes_only, required_models
from reelflow.providers.comfyui.objectinfo import combo_options, input_spec
from reelflow.providers.comfyui.outputs import OutputFile
from reelflow.providers.comfyui.rejection import rejection_error

MAX_CALL_S = 60.0
UNSURE_STATUSES = {500, 502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 527, 530}
IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
VIDEO_SUFFIXES = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "matroska": ".mkv", "avi": ".avi", "gif": ".gif"}
_KNOWN_CLASSES: dict[str, set[str]] = {}  # base URL -> node classes seen installed (custom nodes stay installed)


def plain_reason(exc: httpx.HTTPError) -> str:
    """What went wrong on the connection, in words (no exception class names, which a panel user cannot act on)."""
    kind = ("timed out" if isinstance(exc, httpx.TimeoutException) else
            "could not connect" if isinstance(exc, httpx.ConnectError) else "the connection broke")
    text = str(exc).strip()
    return f"{kind} ({text})" if text else kind


@dataclass(frozen=True)
class QueueState:
    """Prompt ids running and pending on the server (pending in execution order)."""

    running: list[str]
    pending: list[str]

    @property
    def busy(self) -> bool:
        return bool(self.running or self.pending)

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self.running or prompt_id in self.pending


def new_prompt_id(job_key: str) -> str:
    """A fresh id for one submit attempt; store it before submitting."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', job_key)[:80]}-{uuid.uuid4().hex[:12]}"


def content_name(data: bytes, suffix: str) -> str:
    """A content-addressed upload name, so that uploading the same bytes again is a no-op."""
    return f"reelflow_{hashlib.sha256(data).hexdigest()[:16]}{suffix}"


def _image_suffix(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format or ""
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SpecError("image", f"not a readable image ({exc})") from None
    return IMAGE_SUFFIXES.get(image_format, ".png")


def _video_suffix(data: bytes) -> str:
    """The container's usual extension, once PyAV has opened the bytes as a video container (a still image, which
    FFmpeg also opens, is refused) with a video stream in it."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            formats = set(container.format.name.split(","))
            has_video = bool(container.streams.video)
    except av.FFmpegError as exc:
        raise SpecError("video", f"not a readable video ({exc})") from None
    suffix = next((suffix for name, suffix in VIDEO_SUFFIXES.items() if name in formats), None)
    if suffix is None or not has_video:
        raise SpecError("video", f"not a video (read as {', '.join(sorted(formats))}); allowed: MP4, MOV, WebM, MKV, "
                        "AVI or GIF with a video stream")
    return suffix


class ComfyClient:
    """One ComfyUI server. ``headers``/``cookies`` (tunnel auth) go on every HTTP call and the websocket."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None,
                 cookies: Mapping[str, str] | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_headers = dict(headers or {})
        if cookies:
            self.auth_headers["Cookie"] = "; ".join(f"{key}={value}" for key, value in cookies.items())
        self._known_classes = _KNOWN_CLASSES.setdefault(self.base_url, set())
        limit = min(timeout_s, MAX_CALL_S)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self.auth_headers,
                                       timeout=httpx.Timeout(limit, connect=min(10.0, limit)))

    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def ws_url_base(self) -> str:
        scheme, rest = self.base_url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"

    def ws_url(self, client_id: str) -> str:
        return f"{self.ws_url_base}?clientId={quote(client_id)}"

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ComfyUnreachableError(self.base_url, plain_reason(exc)) from None
        except httpx.HTTPError as exc:
            raise ComfyBusyError(f"{method} {path} on {self.base_url} failed mid-call: {plain_reason(exc)}") from None
        if response.status_code in UNSURE_STATUSES:
            raise ComfyBusyError(f"{method} {path} on {self.base_url} answered HTTP {response.status_code}: "
                                 f"{response.text[:200]}", response.status_code)
        if response.status_code in (401, 403):
            raise ProviderError(f"{method} {path} on {self.base_url} was refused "
                                f"(HTTP {response.status_code}); check the tunnel's auth headers or cookies")
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise ProviderError(f"{method} {path} on {self.base_url} answered HTTP {response.status_code}: "
                                f"{response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            raise ComfyBusyError(f"{method} {path} on {self.base_url} did not answer JSON "
                                 f"(is this a ComfyUI server?): {response.text[:200]}") from None

    async def health(self) -> dict[str, Any]:
        """``/system_stats``; raises ``ComfyUnreachableError`` naming the URL when the server does not answer."""
        try:
            stats = await self._json("GET", "/system_stats")
        except ComfyUnreachableError:
            raise
        except ProviderError as exc:
            raise ComfyUnreachableError(self.base_url, str(exc)) from None
        if not isinstance(stats, dict) or "system" not in stats:
            raise ComfyUnreachableError(self.base_url, "GET /system_stats did not look like ComfyUI")
        return stats

    async def object_info(self, class_type: str) -> dict[str, Any]:
        """One node class's description, or ``{}`` when the class is not installed."""
        info = await self._json("GET", f"/object_info/{quote(class_type, safe='')}")
        return info if isinstance(info, dict) else {}

    async def list_models(self, folder: str) -> list[str]:
        response = await self._request("GET", f"/models/{quote(folder, safe='')}")
        if response.status_code == 404:
            return []
        names = response.json() if response.status_code == 200 else None
        if not isinstance(names, list):
            raise ProviderError(f"GET /models/{folder} on {self.base_url} answered "
                                f"HTTP {response.status_code}")
        return [str(name) for name in names]

    async def preflight(self, graph: Graph) -> None:
        """Raise one error listing every node class and model file this graph needs but the server lacks.

        Loader classes are asked every time (model lists change); other classes once per process and server.
        """
        graph = nodes_only(graph)
        refs = required_models(graph)
        loaders = {class_of(graph, ref.node_id) for ref in refs}
        classes = sorted(loaders | {class_of(graph, node_id) for node_id in graph} - self._known_classes)
        infos = dict(zip(classes, await asyncio.gather(*(self.object_info(c) for c in classes)), strict=True))
        self._known_classes.update(class_type for class_type, info in infos.items() if info)
        folders: dict[str, list[str]] = {}
        missing: list[ModelRef] = []
        for ref in refs:
            class_type = class_of(graph, ref.node_id)
            options = combo_options(input_spec(infos[class_type], class_type, ref.input_name))
            if options is None:
                if ref.folder not in folders:
                    folders[ref.folder] = await self.list_models(ref.folder)
                options = folders[ref.folder]
            if ref.filename not in options:
                missing.append(ref)
        absent = [class_type for class_type, info in infos.items() if not info]
        if absent:
            raise ComfyMissingNodesError(self.base_url, missing, absent)
        if missing:
            raise ComfyMissingModelsError(self.base_url, missing)

    async def upload_image(self, data: bytes, filename: str | None = None) -> str:
        """Upload (by default under a content-addressed name); returns the name for ``LoadImage.image``.

        The server may rename the file, so always use the returned name.
        """
        suffix = _image_suffix(data)
        return await self._upload(data, filename or content_name(data, suffix))

    async def upload_video(self, data: bytes, filename: str | None = None) -> str:
        """Upload a video for a video loader (LoadVideo, VHS_LoadVideo): ``/upload/image`` takes any file."""
        suffix = _video_suffix(data)
        return await self._upload(data, filename or content_name(data, suffix))

    async def _upload(self, data: bytes, name: str) -> str:
        files = {"image": (name, data, "application/octet-stream")}
        response = await self._request("POST", "/upload/image", files=files, data={"type": "input"},
                                       timeout=MAX_CALL_S)
        if response.status_code != 200:
            raise ProviderError(f"upload to {self.base_url} refused (HTTP {response.status_code})")
        body = response.json()
        subfolder = body.get("subfolder") or ""
        return f"{subfolder}/{body['name']}" if subfolder else str(body["name"])

    async def submit(self, graph: Graph, prompt_id: str, client_id: str) -> dict[str, Any]:
        """POST /prompt under a prompt_id the caller has already stored; returns the server's answer."""
        body = {"prompt": nodes_only(graph), "client_id": client_id, "prompt_id": prompt_id}
        try:
            response = await self._request("POST", "/prompt", json=body)
        except ComfyBusyError as exc:
            if exc.status == 500:
                raise
            raise ComfySubmitUncertainError(prompt_id, str(exc)) from None
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        if response.status_code == 400:
            raise rejection_error(self.base_url, answer)
        if response.status_code != 200 or not isinstance(answer, dict):
            raise ProviderError(f"POST /prompt on {self.base_url} answered HTTP {response.status_code}: "
                                f"{str(answer)[:200]}")
        if answer.get("node_errors"):
            await self.cancel(prompt_id)
            raise rejection_error(self.base_url, answer, partial=True)
        return answer

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The finished prompt's history entry; None while queued, running, or unknown."""
        body = await self._json("GET", f"/history/{quote(prompt_id, safe='')}")
        entry = body.get(prompt_id) if isinstance(body, dict) else None
        return entry if isinstance(entry, dict) and entry else None

    async def queue_state(self) -> QueueState:
        body = await self._json("GET", "/queue")
        running = [str(item[1]) for item in body.get("queue_running") or []]
        pending = [str(item[1]) for item in sorted(body.get("queue_pending") or [], key=lambda item: item[0])]
        return QueueState(running, pending)

    async def stream_view(self, output: OutputFile, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The file's bytes in chunks, never the whole file in memory."""
        params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
        try:
            async with self._http.stream("GET", "/view", params=params) as response:
                if response.status_code != 200:
                    raise ProviderError(f"GET /view {output.subfolder}/{output.filename} on {self.base_url} "
                                        f"answered HTTP {response.status_code}")
                async for chunk in response.aiter_bytes(chunk_size):
                    yield chunk
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ComfyUnreachableError(self.base_url, plain_reason(exc)) from None
        except httpx.HTTPError as exc:
            raise ComfyBusyError(f"download of {output.filename} from {self.base_url} broke: {plain_reason(exc)}") \
                from None

    async def exists(self, output: OutputFile) -> bool:
        """Whether ``/view`` has the file (reads only the status line and headers)."""
        params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
        try:
            async with self._http.stream("GET", "/view", params=params) as response:
                return response.status_code == 200
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ComfyUnreachableError(self.base_url, plain_reason(exc)) from None
        except httpx.HTTPError as exc:
            raise ComfyBusyError(f"GET /view on {self.base_url} broke: {plain_reason(exc)}") from None

    async def cancel(self, prompt_id: str) -> None:
        """Remove the prompt if pending, then interrupt it if running."""
        await self._request("POST", "/queue", json={"delete": [prompt_id]})
        await self._request("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def free(self) -> None:
        """Unload models and free VRAM (between jobs, or after an out-of-memory error)."""
        await self._request("POST", "/free", json={"unload_models": True, "free_memory": True})


__all__ = ["ComfyClient", "ProgressEvent", "QueueState", "content_name", "new_prompt_id"]
