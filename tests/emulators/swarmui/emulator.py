"""A SwarmUI API emulator (HTTP + websocket) on 127.0.0.1, with fault knobs and counters.

In a test: ``with SwarmEmulator() as emu`` (``emu.url``, ``emu.config``, ``emu.stats()``,
``emu.restart()`` forgets every session). As a process: ``python -m tests.emulators.swarmui
--port P`` prints ``SWARM_EMULATOR_READY {json}``. Knobs over HTTP: ``GET|POST /_admin/config``,
``POST /_admin/restart``, ``POST /_admin/reset``, ``GET /_admin/stats``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.emulators.common.admin import admin_routes, apply_knobs
from tests.emulators.common.media import image_bytes, mp4_bytes
from tests.emulators.common.server import Emulator, ServerThread
from tests.emulators.common.standalone import parse_config, serve_until_signalled

VIDEO = {"width": 64, "height": 48, "fps": 16, "frames": 17}
DEFAULT_MODELS = ["OfficialStableDiffusion/sd_xl_base_1.0.safetensors",
                  "Wan/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                  "Wan/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"]
INVALID_SESSION = {"error": "Invalid session ID. You may need to refresh the page.",
                   "error_id": "invalid_session_id"}


def sample_mp4() -> bytes:
    return mp4_bytes(VIDEO["width"], VIDEO["height"], VIDEO["frames"], VIDEO["fps"])


def sample_png() -> bytes:
    return image_bytes((VIDEO["width"], VIDEO["height"]), (200, 120, 40))


@dataclass
class SwarmConfig:
    user_id: str = "local"
    swarm_token: str | None = None
    bearer_token: str | None = None
    error_message: str | None = None
    drop_socket_mid_job: bool = False
    drop_next: int = 0
    lose_dropped_jobs: bool = False
    discard_all: bool = False
    images_only: bool = False
    data_url_output: bool = False
    progress_steps: int = 4
    step_delay_s: float = 0.0
    finish_delay_s: float = 0.2
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))


class SwarmState:
    def __init__(self, config: SwarmConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.sessions: set[str] = set()
        self.files: dict[str, tuple[bytes, str, str]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.sessions.clear()
            self.files.clear()
            self.live_gens = 0
            self.last_payload: dict[str, Any] | None = None
            self.counters: dict[str, int] = {"sessions_created": 0, "generate_requests": 0, "interrupts": 0,
                                             "downloads": 0, "unauthorized": 0, "ws_connections": 0}
            self.calls: dict[str, int] = {}

    def restart(self) -> None:
        with self.lock:
            self.sessions.clear()

    def configure(self, **knobs: Any) -> dict[str, Any]:
        with self.lock:
            return apply_knobs(self.config, knobs)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {**self.counters, "calls": dict(self.calls), "live_gens": self.live_gens,
                    "outputs": sorted(self.files), "sessions": len(self.sessions)}

    def authorized(self, conn: HTTPConnection) -> bool:
        cfg = self.config
        ok = ((cfg.bearer_token is None or conn.headers.get("authorization") == f"Bearer {cfg.bearer_token}")
              and (cfg.swarm_token is None or conn.cookies.get("swarm_token") == cfg.swarm_token))
        if not ok:
            self.counters["unauthorized"] += 1
        return ok

    def save_output(self, payload: dict[str, Any]) -> tuple[str, str]:
        """Store the job's output under raw/<date>/; returns its ``View/...`` path and metadata."""
        ext, data = ("png", sample_png()) if self.config.images_only else ("mp4", sample_mp4())
        slug = re.sub(r"[^a-z0-9]+", "-", str(payload.get("prompt", "")).lower()).strip("-")[:40] or "video"
        src = f"raw/{date.today().isoformat()}/{len(self.files) + 1:04d}-{slug}.{ext}"
        extra = {k: str(v) for k, v in (payload.get("extra_metadata") or {}).items()}
        params = {k: v for k, v in payload.items() if k not in ("session_id", "initimage", "extra_metadata")}
        extra["generation_time"] = "1.00 total seconds"
        metadata = json.dumps({"sui_image_params": params, "sui_extra_data": extra})
        with self.lock:
            self.files[src] = (data, f"video/{ext}" if ext == "mp4" else f"image/{ext}", metadata)
        return f"View/{self.config.user_id}/{src}", metadata


def _app(state: SwarmState) -> Starlette:
    def api_list_models(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("subtype", "Stable-Diffusion") != "Stable-Diffusion":
            return {"folders": [], "files": []}
        files = [{"name": n, "title": n.rsplit("/", 1)[-1].rsplit(".", 1)[0], "local": True}
                 for n in state.config.models]
        folders = sorted({n.rsplit("/", 1)[0] for n in state.config.models if "/" in n})
        return {"folders": folders, "files": files}

    def api_status(body: dict[str, Any]) -> dict[str, Any]:
        return {"status": {"waiting_gens": 0, "loading_models": 0, "waiting_backends": 0,
                           "live_gens": state.live_gens},
                "backend_status": {"status": "running", "class": "", "message": "", "any_loading": False},
                "supported_features": []}

    def api_list_images(body: dict[str, Any]) -> dict[str, Any]:
        with state.lock:
            files = [{"src": src, "metadata": meta} for src, (_, _, meta) in state.files.items()]
        return {"folders": sorted({f["src"].rsplit("/", 1)[0] for f in files}), "files": files[::-1]}

    def api_interrupt(body: dict[str, Any]) -> dict[str, Any]:
        state.counters["interrupts"] += 1
        return {"success": True}

    routes = {"ListModels": api_list_models, "GetCurrentStatus": api_status, "ListImages": api_list_images,
              "InterruptAll": api_interrupt}

    async def api(request: Request) -> Response:
        route = request.path_params["route"]
        state.calls[route] = state.calls.get(route, 0) + 1
        if not state.authorized(request):
            return PlainTextResponse("unauthorized", 401)
        body = await request.json()
        if route == "GetNewSession":
            session_id = uuid.uuid4().hex
            with state.lock:
                state.sessions.add(session_id)
                state.counters["sessions_created"] += 1
            return JSONResponse({"session_id": session_id, "user_id": state.config.user_id,
                                 "version": "0.9.7-emulator", "server_id": "emu", "permissions": []})
        if body.get("session_id") not in state.sessions:
            return JSONResponse(INVALID_SESSION, 401)
        handler = routes.get(route)
        if handler is None:
            return JSONResponse({"error": "Unknown API route", "error_id": "bad_route"}, 400)
        return JSONResponse(handler(body))

    async def finish_later(payload: dict[str, Any]) -> None:
        await asyncio.sleep(state.config.finish_delay_s)
        if not state.config.lose_dropped_jobs:
            state.save_output(payload)
        state.live_gens -= 1

    def should_drop() -> bool:
        if state.config.drop_next > 0:
            state.config.drop_next -= 1
            return True
        return state.config.drop_socket_mid_job

    async def generate(ws: WebSocket) -> None:
        if not state.authorized(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
        state.counters["ws_connections"] += 1
        payload = await ws.receive_json()
        if payload.get("session_id") not in state.sessions:
            await ws.send_json(INVALID_SESSION)
            await ws.close()
            return
        state.counters["generate_requests"] += 1
        state.last_payload = payload
        cfg = state.config
        await ws.send_json(api_status({}))
        unknown = [payload.get(k) for k in ("model", "videomodel", "videoswapmodel") if payload.get(k)
                   and payload[k] not in cfg.models and f"{payload[k]}.safetensors" not in cfg.models]
        if unknown or cfg.error_message:
            await ws.send_json({"error": cfg.error_message or f"Invalid model value '{unknown[0]}'"})
            await ws.send_json({"socket_intention": "close"})
            await ws.close()
            return
        state.live_gens += 1
        for step in range(cfg.progress_steps):
            await asyncio.sleep(cfg.step_delay_s)
            fraction = (step + 1) / cfg.progress_steps
            await ws.send_json({"gen_progress": {"batch_index": "0", "overall_percent": fraction,
                                                 "current_percent": fraction}})
            if step == 0 and should_drop():
                task = asyncio.create_task(finish_later(payload))
                state.tasks.add(task)
                task.add_done_callback(state.tasks.discard)
                await ws.close(code=1011)
                return
        path, meta = state.save_output(payload)
        state.live_gens -= 1
        if cfg.data_url_output:
            data, content_type, _ = state.files[path.split("/", 2)[2]]
            path = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
        try:
            await ws.send_json({"image": path, "batch_index": "0", "request_id": "1", "metadata": meta})
            await ws.send_json({"discard_indices": [0] if cfg.discard_all else []})
            await ws.send_json({"socket_intention": "close"})
            await ws.send_json(api_status({}))
            await ws.close()
        except WebSocketDisconnect:
            pass

    async def view(request: Request) -> Response:
        if not state.authorized(request):
            return PlainTextResponse("unauthorized", 401)
        found = state.files.get(request.path_params["path"])
        if request.path_params["user"] != state.config.user_id or found is None:
            return PlainTextResponse("404, file not found", 404)
        state.counters["downloads"] += 1
        return Response(found[0], media_type=found[1])

    return Starlette(routes=[
        WebSocketRoute("/API/GenerateText2ImageWS", generate),
        Route("/API/{route}", api, methods=["POST"]),
        Route("/View/{user}/{path:path}", view, methods=["GET"]),
        *admin_routes(state.configure, state.stats, {"restart": state.restart, "reset": state.reset}),
    ])


class SwarmEmulator(Emulator):
    def __init__(self, port: int = 0, config: SwarmConfig | None = None) -> None:
        self.config = config or SwarmConfig()
        self.state = SwarmState(self.config)
        self._server = ServerThread(_app(self.state), port, name="swarm-emulator")

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return self.state.configure(**knobs)

    def restart(self) -> None:
        """Forget every session, as a restarted SwarmUI does."""
        self.state.restart()

    def reset(self) -> None:
        """Default knobs, no sessions, outputs or counters."""
        self.state.configure(**asdict(SwarmConfig()))
        self.state.reset()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def start(self) -> SwarmEmulator:
        sample_mp4()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


def main(argv: list[str] | None = None) -> None:
    args, config = parse_config(argv, (__doc__ or "").splitlines()[0], SwarmConfig, skip=("models",))
    serve_until_signalled(SwarmEmulator(port=args.port, config=config), "SWARM_EMULATOR_READY",
                          lambda emu: {"url": emu.url, "port": emu.port, "config": asdict(config)})

