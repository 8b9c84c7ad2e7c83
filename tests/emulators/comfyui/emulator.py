"""A ComfyUI emulator (HTTP + websocket, the protocol of core 0.3.64) on 127.0.0.1, with fault knobs.

In a test: ``with ComfyEmulator(job_seconds=0.5) as emu`` (``emu.url``, ``emu.configure(...)``,
``emu.stats()``, ``emu.restart()``). As a process: ``python -m tests.emulators.comfyui --port P``
prints ``COMFYUI_EMULATOR_READY {json}``; drive it with ``GET|POST /_admin/config``, ``GET /_admin/stats``,
``POST /_admin/restart`` and ``POST /_admin/reset`` (stats).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import mimetypes
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import fields
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from tests.emulators.comfyui.media import sample_mp4
from tests.emulators.comfyui.multipart import parse_multipart
from tests.emulators.comfyui.nodes import KNOWN, LOADERS, PSEUDO_MODELS, Rejected, object_info, validate
from tests.emulators.comfyui.state import ComfyKnobs, ComfyState
from tests.emulators.common.admin import admin_routes, apply_knobs
from tests.emulators.common.server import Emulator, ServerThread
from tests.emulators.common.standalone import serve_until_signalled

TYPES = ("input", "output", "temp")


class Gate:
    """ASGI middleware: tunnel-style auth on HTTP and websocket, and HTTP call counting (not /_admin)."""

    def __init__(self, app: ASGIApp, state: ComfyState) -> None:
        self.app, self.state = app, state

    def _allowed(self, scope: Scope) -> bool:
        headers = {key.decode().lower(): value.decode() for key, value in scope.get("headers", [])}
        knobs = self.state.knobs
        if any(headers.get(key.lower()) != value for key, value in knobs.required_headers.items()):
            return False
        cookies = SimpleCookie(headers.get("cookie", ""))
        return all(key in cookies and cookies[key].value == value
                   for key, value in knobs.required_cookies.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        admin = scope.get("path", "").startswith("/_admin")
        if scope["type"] == "http" and not admin:
            self.state.stats.http_calls += 1
            self.state.stats.calls[f"{scope['method']} {scope['path']}"] += 1
        if scope["type"] in ("http", "websocket") and not admin and not self._allowed(scope):
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1008})
                return
            await PlainTextResponse("unauthorized", 401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _routes(state: ComfyState) -> list[BaseRoute]:
    async def post_prompt(request: Request) -> Response:
        if state.knobs.prompt_status:
            return PlainTextResponse(f"{state.knobs.prompt_status} from the emulated tunnel",
                                     state.knobs.prompt_status)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):  # aiohttp's answer to the handler's exception, not JSON
            return PlainTextResponse("500 Internal Server Error\n\nServer got itself in trouble", 500)
        try:
            outputs, node_errors = validate(body.get("prompt"), state.knobs.installed_models, state.images(),
                                            set(state.knobs.missing_node_classes))
        except Rejected as rejected:
            return JSONResponse(rejected.body, 400)
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra["client_id"] = body["client_id"]
        state.stats.submits.append(prompt_id)
        number = state.enqueue(prompt_id, body["prompt"], extra, outputs, bool(body.get("front")))
        return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def get_prompt(request: Request) -> Response:
        return JSONResponse({"exec_info": {"queue_remaining": state.queue_remaining()}})

    async def history_one(request: Request) -> Response:
        prompt_id = request.path_params["prompt_id"]
        entry = state.history.get(prompt_id)
        return JSONResponse({prompt_id: entry} if entry else {})

    async def history_all(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            if body.get("clear"):
                state.history.clear()
            for prompt_id in body.get("delete") or []:
                state.history.pop(prompt_id, None)
            return Response(status_code=200)
        limit = int(request.query_params.get("max_items", 10000))
        return JSONResponse(dict(list(state.history.items())[-limit:]))

    async def queue(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            if body.get("clear"):
                state.pending.clear()
            if body.get("delete"):
                state.stats.queue_deletes += 1
                state.delete([str(prompt_id) for prompt_id in body["delete"]])
            await asyncio.sleep(state.knobs.control_answer_delay_s)
            return Response(status_code=200)
        running = [state.running.item()] if state.running else []
        pending = [job.item() for job in state.pending]
        return JSONResponse({"queue_running": running, "queue_pending": pending})

    async def interrupt(request: Request) -> Response:
        body = await request.body()
        state.stats.interrupts += 1
        state.interrupt(json.loads(body).get("prompt_id") if body else None)
        await asyncio.sleep(state.knobs.control_answer_delay_s)
        return Response(status_code=200)

    async def free(request: Request) -> Response:
        state.stats.frees += 1
        return Response(status_code=200)

    async def system_stats(request: Request) -> Response:
        system = {"os": "posix", "comfyui_version": "0.3.64-emulated", "python_version": "3.12",
                  "pytorch_version": "2.8.0", "embedded_python": False, "argv": ["main.py"],
                  "ram_total": 64 << 30, "ram_free": 60 << 30}
        device = {"name": "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync", "type": "cuda", "index": 0,
                  "vram_total": 80 << 30, "vram_free": 79 << 30, "torch_vram_total": 0, "torch_vram_free": 0}
        return JSONResponse({"system": system, "devices": [device]})

    async def features(request: Request) -> Response:
        return JSONResponse({"supports_preview_metadata": True, "max_upload_size": 104857600})

    async def object_info_one(request: Request) -> Response:
        return JSONResponse(object_info(request.path_params["class_type"], state.knobs.installed_models,
                                        state.knobs.combo_form, set(state.knobs.missing_node_classes)))

    async def object_info_all(request: Request) -> Response:
        infos: dict[str, Any] = {}
        for class_type in sorted(KNOWN):
            infos |= object_info(class_type, state.knobs.installed_models, state.knobs.combo_form,
                                 set(state.knobs.missing_node_classes))
        return JSONResponse(infos)

    async def models(request: Request) -> Response:
        return JSONResponse(sorted({folder for spec in LOADERS.values() for folder in spec.values()}))

    async def models_folder(request: Request) -> Response:
        folder = request.path_params["folder"]
        if folder not in {f for spec in LOADERS.values() for f in spec.values()}:
            return Response(status_code=404)
        return JSONResponse(state.knobs.installed_models.get(folder, []) + PSEUDO_MODELS.get(folder, []))

    async def upload_image(request: Request) -> Response:
        parts = parse_multipart(await request.body(), request.headers.get("content-type", ""))
        image = parts.get("image")
        kind = parts["type"].data.decode() if "type" in parts else "input"
        subfolder = parts["subfolder"].data.decode() if "subfolder" in parts else ""
        overwrite = "overwrite" in parts and parts["overwrite"].data.decode().lower() in ("true", "1")
        if image is None or not image.filename or kind not in TYPES:
            return Response(status_code=400)
        base = state.dir(kind).resolve()
        folder = (base / subfolder).resolve()
        if ".." in image.filename or image.filename.startswith("/") or not folder.is_relative_to(base):
            return Response(status_code=400)
        folder.mkdir(parents=True, exist_ok=True)
        stem, dot, ext = image.filename.rpartition(".")
        stem, ext = (stem, dot + ext) if dot else (image.filename, "")
        name, counter = image.filename, 1
        while not overwrite and (folder / name).exists() and (folder / name).read_bytes() != image.data:
            name, counter = f"{stem} ({counter}){ext}", counter + 1
        (folder / name).write_bytes(image.data)
        state.stats.uploads += 1
        state.stats.uploaded.append(f"{subfolder}/{name}" if subfolder else name)
        return JSONResponse({"name": name, "subfolder": subfolder, "type": kind})

    async def view(request: Request) -> Response:
        query = request.query_params
        filename, subfolder = query.get("filename", ""), query.get("subfolder", "")
        kind = query.get("type", "output")
        if not filename or kind not in TYPES or filename.startswith("/") or ".." in filename:
            return Response(status_code=400)
        base = state.dir(kind).resolve()
        folder = (base / subfolder).resolve()
        if not folder.is_relative_to(base):
            return Response(status_code=403)
        path = folder / filename
        if not path.is_file():
            return Response(status_code=404)
        media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, filename=filename, content_disposition_type="inline")

    async def ws(websocket: WebSocket) -> None:
        client_id = websocket.query_params.get("clientId") or uuid.uuid4().hex
        await websocket.accept()
        state.stats.ws_connects += 1
        silent = state.knobs.silent_websocket or (state.knobs.silent_reconnects and client_id in state.dropped)
        if not silent:
            state.sockets[client_id] = websocket
            await state.greet(client_id)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text and not silent and json.loads(text).get("type") == "feature_flags":
                    await websocket.send_text(json.dumps({"type": "feature_flags",
                                                          "data": {"supports_preview_metadata": True}}))
        except Exception:
            pass
        finally:
            if state.sockets.get(client_id) is websocket:
                del state.sockets[client_id]

    api: list[tuple[str, Any, list[str]]] = [
        ("/prompt", post_prompt, ["POST"]), ("/prompt", get_prompt, ["GET"]),
        ("/history/{prompt_id}", history_one, ["GET"]), ("/history", history_all, ["GET", "POST"]),
        ("/queue", queue, ["GET", "POST"]), ("/interrupt", interrupt, ["POST"]), ("/free", free, ["POST"]),
        ("/system_stats", system_stats, ["GET"]), ("/features", features, ["GET"]),
        ("/object_info/{class_type}", object_info_one, ["GET"]), ("/object_info", object_info_all, ["GET"]),
        ("/models/{folder}", models_folder, ["GET"]), ("/models", models, ["GET"]),
        ("/upload/image", upload_image, ["POST"]), ("/view", view, ["GET"]),
    ]
    routes: list[BaseRoute] = [Route(prefix + path, handler, methods=methods)
                               for prefix in ("", "/api") for path, handler, methods in api]
    routes += [WebSocketRoute("/ws", ws), WebSocketRoute("/api/ws", ws),
               *admin_routes(lambda **knobs: apply_knobs(state.knobs, knobs), lambda: state.stats.snapshot(),
                             {"restart": state.restart, "reset": state.reset_stats})]
    return routes


def build_app(state: ComfyState) -> ASGIApp:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        yield
        await state.stop()

    return Gate(Starlette(routes=_routes(state), lifespan=lifespan), state)


class ComfyEmulator(Emulator):
    """The emulator served by uvicorn in a daemon thread; ``port=0`` picks a free port."""

    def __init__(self, port: int = 0, **knobs: Any) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="comfyui-emulator-"))
        self.state = ComfyState(self._root, ComfyKnobs(**knobs))
        self._server = ServerThread(build_app(self.state), port, name="comfyui-emulator", lifespan="on",
                                    graceful_shutdown_s=1)
        self.port: int = self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def knobs(self) -> ComfyKnobs:
        return self.state.knobs

    def configure(self, **knobs: Any) -> None:
        apply_knobs(self.state.knobs, knobs)

    def stats(self) -> dict[str, Any]:
        return self.state.stats.snapshot()

    def reset_stats(self) -> None:
        self.state.reset_stats()

    def _call(self, coro: Any) -> Any:
        assert self.state.loop is not None, "emulator not started"
        return asyncio.run_coroutine_threadsafe(coro, self.state.loop).result(timeout=10)

    def restart(self) -> None:
        """Forget queue, history, cache and sockets, as a ComfyUI restart does (files on disk stay)."""
        self._call(self.state.restart())

    def output_files(self) -> list[Path]:
        return sorted(path for path in (self._root / "output").rglob("*") if path.is_file())

    def start(self) -> ComfyEmulator:
        sample_mp4()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        shutil.rmtree(self._root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--knobs", default="{}", help="JSON object of ComfyKnobs values")
    args = parser.parse_args(argv)
    knobs = json.loads(args.knobs)
    unknown = set(knobs) - {f.name for f in fields(ComfyKnobs)}
    if unknown:
        parser.error(f"unknown knobs: {sorted(unknown)}")
    serve_until_signalled(ComfyEmulator(port=args.port, **knobs), "COMFYUI_EMULATOR_READY",
                          lambda emu: {"url": emu.url, "port": emu.port})
