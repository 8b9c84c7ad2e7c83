"""Async SwarmUI client for Wan 2.2 image-to-video over the ``GenerateText2ImageWS`` websocket.

SwarmUI has no job id: each request carries ``extra_metadata.job_id``, and after a dropped socket the
client looks for that id in ``ListImages`` (and asks ``GetCurrentStatus`` whether anything still runs)
before it would ever send the request again.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.errors import ModelUnavailableError, ProviderError, SwarmSocketLostError, TransientProviderError
from reelflow.settings import SwarmWanSettings, get_settings

ProgressFn = Callable[[float, float], Awaitable[None] | None]

CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime", "gif": "image/gif",
                 "webp": "image/webp"}
_IMAGE_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"RIFF", "image/webp"))


@dataclass(frozen=True)
class ResolvedModels:
    base: str
    high_noise: str
    low_noise: str


@dataclass(frozen=True)
class SwarmStatus:
    waiting_gens: int = 0
    loading_models: int = 0
    waiting_backends: int = 0
    live_gens: int = 0
    backend_status: str | None = None

    @property
    def busy(self) -> bool:
        return self.waiting_gens + self.loading_models + self.waiting_backends + self.live_gens > 0


def _ext(ref: str) -> str:
    if ref.startswith("data:"):
        mime = ref[5:].split(";", 1)[0]
        return next((ext for ext, ct in CONTENT_TYPES.items() if ct == mime), mime.rsplit("/", 1)[-1])
    return PurePosixPath(ref.split("?", 1)[0]).suffix.lstrip(".").lower()


def _name_forms(name: str) -> set[str]:
    bare = name.removesuffix(".safetensors")
    return {name, bare, bare.rsplit("/", 1)[-1]}


def frames_for(duration_s: float, fps: int) -> int:
    """Wan wants 4n+1 frames."""
    return max(1, 4 * round(duration_s * fps / 4) + 1)


def image_data_url(image: bytes | Path | str) -> str:
    if isinstance(image, str) and image.startswith("data:"):
        return image
    data = Path(image).read_bytes() if isinstance(image, (str, Path)) else image
    mime = next((m for magic, m in _IMAGE_MAGIC if data.startswith(magic)), "image/png")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


class SwarmClient:
    """``async with SwarmClient(url, swarm_token=..., headers=gpu.auth_headers()) as swarm: ...``."""

    def __init__(self, base_url: str, *, swarm_token: str | SecretStr | None = None,
                 headers: dict[str, str] | None = None, settings: SwarmWanSettings | None = None,
                 timeout: float = 60.0, idle_timeout_s: float = 120.0, poll_interval_s: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings or get_settings().swarm
        self.idle_timeout_s = idle_timeout_s
        self.poll_interval_s = poll_interval_s
        self._headers = self._auth_headers(swarm_token, headers or {})
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers,
                                       timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self._session_id: str | None = None
        self._user_id = "local"
        self._lock = asyncio.Lock()
        self._models: ResolvedModels | None = None

    def __repr__(self) -> str:
        return f"SwarmClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> SwarmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def _auth_headers(swarm_token: str | SecretStr | None, headers: dict[str, str]) -> dict[str, str]:
        out = {k: v for k, v in headers.items() if k.lower() != "cookie"}
        cookies = [v for k, v in headers.items() if k.lower() == "cookie"]
        token = swarm_token.get_secret_value() if isinstance(swarm_token, SecretStr) else swarm_token
        if token:
            cookies += [f"swarm_token={token}", f"swarm_user_token={token}"]
        if cookies:
            out["Cookie"] = "; ".join(cookies)
        return out

    # -- sessions and plain calls -------------------------------------------------------------

    async def _session(self) -> str:
        async with self._lock:
            if self._session_id is None:
                data = await self._post("GetNewSession", {})
                if "session_id" not in data:
                    raise ProviderError(f"SwarmUI GetNewSession: {data.get('error', 'no session_id')}")
                self._session_id, self._user_id = data["session_id"], data.get("user_id") or "local"
            return self._session_id

    async def _renew(self, stale: str) -> str:
        async with self._lock:
            if self._session_id == stale:
                self._session_id = None
        return await self._session()

    async def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = await self._http.post(f"/API/{route}", json=body)
        except httpx.HTTPError as exc:
            raise TransientProviderError(f"SwarmUI {route}: {type(exc).__name__}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientProviderError(f"SwarmUI {route}: HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if resp.status_code in (401, 403):
                raise ProviderError(f"SwarmUI {route}: HTTP {resp.status_code}; check the auth settings")
            raise ProviderError(f"SwarmUI {route}: HTTP {resp.status_code}, not a JSON object")
        return data

    async def call(self, route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST ``/API/<route>`` with the session id; renews the session once on ``invalid_session_id``."""
        session_id = await self._session()
        data = await self._post(route, {**(body or {}), "session_id": session_id})
        if data.get("error_id") == "invalid_session_id":
            session_id = await self._renew(session_id)
            data = await self._post(route, {**(body or {}), "session_id": session_id})
        if "error" in data:
            raise ProviderError(f"SwarmUI {route}: {data['error']}")
        return data

    async def list_models(self, subtype: str = "Stable-Diffusion", depth: int = 5) -> list[str]:
        data = await self.call("ListModels", {"path": "", "depth": depth, "subtype": subtype})
        return [str(f["name"]) for f in data.get("files") or [] if isinstance(f, dict) and f.get("name")]

    async def preflight(self, model_id: str = "swarmui-wan22-i2v") -> ResolvedModels:
        """Resolve the configured model names to the server's; one error lists every missing model."""
        s = self.settings
        available = await self.list_models(s.model_subtype)
        resolved: dict[str, str] = {}
        missing = []
        for wanted in (s.base_model, s.high_noise_model, s.low_noise_model):
            match = next((n for n in available if _name_forms(wanted) & _name_forms(n)), None)
            if match is None:
                missing.append(f"SwarmUI has no {s.model_subtype} model '{wanted}'")
            else:
                resolved[wanted] = match
        if missing:
            raise ModelUnavailableError(model_id, missing)
        self._models = ResolvedModels(resolved[s.base_model], resolved[s.high_noise_model],
                                      resolved[s.low_noise_model])
        return self._models

    async def current_status(self) -> SwarmStatus:
        data = await self.call("GetCurrentStatus")
        st, backend = data.get("status") or {}, data.get("backend_status") or {}
        return SwarmStatus(**{k: int(st.get(k) or 0) for k in ("waiting_gens", "loading_models",
                                                                "waiting_backends", "live_gens")},
                           backend_status=backend.get("status"))

    async def interrupt(self, other_sessions: bool = False) -> None:
        await self.call("InterruptAll", {"other_sessions": other_sessions})

    async def find_output_by_job_id(self, job_id: str, depth: int = 3) -> str | None:
        """The ``View/...`` path of the output tagged with ``job_id`` (a video when there is one)."""
        body = {"path": "", "depth": depth, "sortBy": "Date", "sortReverse": False}
        data = await self.call("ListImages", body)
        found = []
        for entry in data.get("files") or []:
            try:
                meta = json.loads(entry.get("metadata") or "{}")
            except (TypeError, ValueError):
                continue
            extra = meta.get("sui_extra_data") if isinstance(meta, dict) else None
            if isinstance(extra, dict) and str(extra.get("job_id")) == job_id and entry.get("src"):
                found.append(f"View/{self._user_id}/{entry['src']}")
        return self._pick_video(found)

    # -- generation ---------------------------------------------------------------------------

    def build_payload(self, job_id: str, image: bytes | Path | str, params: VideoParams,
                      models: ResolvedModels) -> dict[str, Any]:
        s = self.settings
        fps = params.fps or s.fps
        return {
            "images": 1, "prompt": params.prompt, "negativeprompt": params.negative_prompt or "",
            "model": models.base, "seed": params.seed,
            "initimage": image_data_url(image), "initimagecreativity": 0,
            "videomodel": models.high_noise, "videoswapmodel": models.low_noise,
            "videoswappercent": s.swap_percent,
            "videoframes": params.frames or frames_for(params.duration_s, fps),
            "videosteps": s.steps, "videocfg": s.cfg, "videofps": fps,
            "videoresolution": s.resolution, "videoformat": s.video_format,
            **s.extra_params,
            "extra_metadata": {"job_id": job_id},
        }

    async def generate_video(self, job_id: str, image: bytes | Path | str, params: VideoParams, *,
                             on_progress: ProgressFn | None = None, download_dir: Path | None = None,
                             allow_resubmit: bool = False, deadline_s: float = 1800.0) -> ProviderOutput:
        """Run one image-to-video job and return its video (downloaded into ``download_dir`` if given).

        After a dropped socket the output is searched by ``job_id``; the request is sent again only
        when nothing is running, nothing carries the id and ``allow_resubmit`` is true (once).
        """
        deadline = time.monotonic() + deadline_s
        payload = self.build_payload(job_id, image, params, self._models or await self.preflight())
        ref = None
        for attempt in range(2):
            try:
                ref = await self._stream(payload, on_progress, deadline)
                break
            except SwarmSocketLostError:
                ref = await self.recover(job_id, deadline)
                if ref is not None:
                    break
                if not allow_resubmit or attempt:
                    raise SwarmSocketLostError(f"SwarmUI job {job_id} was lost: the socket dropped, nothing is running "
                                     "and no output carries its id; not resubmitting") from None
        assert ref is not None
        return await self._output(ref, payload, download_dir)

    async def recover(self, job_id: str, deadline: float) -> str | None:
        """Poll status and history until the tagged output appears, or nothing is running any more."""
        while True:
            try:
                status = await self.current_status()
                ref = await self.find_output_by_job_id(job_id)
            except TransientProviderError:
                status, ref = None, None
            if ref is not None:
                return ref
            if status is not None and not status.busy:
                return None
            if time.monotonic() >= deadline:
                raise TransientProviderError(f"SwarmUI job {job_id} not finished before its deadline; "
                                             "look it up later with find_output_by_job_id") from None
            await asyncio.sleep(min(self.poll_interval_s, max(0.0, deadline - time.monotonic())))

    def _ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/API/GenerateText2ImageWS"

    async def _open(self) -> ClientConnection:
        try:
            return await connect(self._ws_url(), additional_headers=self._headers, max_size=None,
                                 open_timeout=30, ping_interval=20, ping_timeout=60)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise TransientProviderError(f"cannot open the SwarmUI websocket: {type(exc).__name__}") from None

    async def _stream(self, payload: dict[str, Any], on_progress: ProgressFn | None, deadline: float) -> str:
        session_id = await self._session()
        for renewed in (False, True):
            ws = await self._open()
            outputs: dict[str, str] = {}
            try:
                await ws.send(json.dumps({**payload, "session_id": session_id}))
                while True:
                    wait = min(self.idle_timeout_s, deadline - time.monotonic())
                    if wait <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(wait):
                        msg = json.loads(await ws.recv())
                    if not isinstance(msg, dict):
                        continue
                    if msg.get("error_id") == "invalid_session_id" and not renewed:
                        session_id = await self._renew(session_id)
                        break
                    if "error" in msg:
                        raise ProviderError(f"SwarmUI generation failed: {msg['error']}")
                    await self._handle(msg, outputs, on_progress)
                    if msg.get("socket_intention") == "close":
                        return self._final(outputs)
            except (ConnectionClosed, OSError, TimeoutError):
                video = self._pick_video(list(outputs.values()))
                if video:
                    return video
                raise SwarmSocketLostError("SwarmUI websocket ended before the output arrived") from None
            finally:
                await ws.close()
        raise ProviderError("SwarmUI rejected the session twice")

    async def _handle(self, msg: dict[str, Any], outputs: dict[str, str],
                      on_progress: ProgressFn | None) -> None:
        if isinstance(msg.get("gen_progress"), dict) and on_progress is not None:
            prog = msg["gen_progress"]
            overall = prog.get("overall_percent")
            if overall is None and prog.get("total_steps"):
                overall = float(prog.get("step") or 0) / float(prog["total_steps"])
            result = on_progress(float(overall or 0.0), float(prog.get("current_percent") or 0.0))
            if inspect.isawaitable(result):
                await result
        image = msg.get("image")
        if isinstance(image, dict):
            msg, image = image, image.get("image")
        if isinstance(image, str):
            outputs[str(msg.get("batch_index", len(outputs)))] = image
        for index in msg.get("discard_indices") or []:
            outputs.pop(str(index), None)

    def _final(self, outputs: dict[str, str]) -> str:
        real = [ref for index, ref in outputs.items() if not index.startswith("-")]
        video = self._pick_video(real)
        if video:
            return video
        if real:
            raise ProviderError(f"SwarmUI returned no video, only {[_ext(r) for r in real]} outputs "
                                "(see mcmonkeyprojects/SwarmUI#1321)")
        raise ProviderError("SwarmUI finished without any output")

    def _pick_video(self, refs: list[str]) -> str | None:
        wanted = self.settings.video_extension
        videos = [r for r in refs if _ext(r) == wanted]
        return videos[-1] if videos else None

    # -- outputs ------------------------------------------------------------------------------

    def media_ref(self, ref: str) -> MediaRef:
        """Where to read an output: its URL on the server with the same auth headers."""
        name = PurePosixPath(ref).name
        return MediaRef(url=f"{self.base_url}/{ref.lstrip('/')}", content_type=CONTENT_TYPES.get(_ext(ref),
                        "application/octet-stream"), filename=name, headers=dict(self._headers) or None)

    async def download(self, ref: str, dest: Path) -> Path:
        """Stream an output (``View/...`` path or data URL) to ``dest``; checks the size."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if ref.startswith("data:"):
            await asyncio.to_thread(dest.write_bytes, base64.b64decode(ref.split(",", 1)[1]))
            return dest
        written = 0
        try:
            async with self._http.stream("GET", f"/{ref.lstrip('/')}") as resp:
                if resp.status_code != 200:
                    raise (TransientProviderError if resp.status_code >= 500 else ProviderError)(
                        f"SwarmUI download of {ref}: HTTP {resp.status_code}")
                expected = int(resp.headers.get("Content-Length") or 0)
                with dest.open("wb") as fh:
                    async for chunk in resp.aiter_bytes(1 << 20):
                        written += fh.write(chunk)
        except httpx.HTTPError as exc:
            raise TransientProviderError(f"SwarmUI download of {ref}: {type(exc).__name__}") from None
        if written == 0 or (expected and written != expected):
            raise TransientProviderError(f"SwarmUI download of {ref}: {written} of {expected or '?'} bytes")
        return dest

    async def _output(self, ref: str, payload: dict[str, Any], download_dir: Path | None) -> ProviderOutput:
        ext = _ext(ref)
        content_type = CONTENT_TYPES.get(ext, "application/octet-stream")
        if download_dir is not None:
            name = f"swarm-output.{ext}" if ref.startswith("data:") else PurePosixPath(ref).name
            path = await self.download(ref, download_dir / f"{payload['extra_metadata']['job_id']}-{name}")
            media = MediaRef(path=str(path), content_type=content_type, filename=path.name)
        elif ref.startswith("data:"):
            media = MediaRef(url=ref, content_type=content_type)
        else:
            media = self.media_ref(ref)
        return ProviderOutput(media=media, fps=float(payload["videofps"]), frames=payload["videoframes"],
                              provider_job_id=None if ref.startswith("data:") else ref)
