"""The emulated ComfyUI server's state: queue, worker, history, websockets, files. Lives in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import posixpath
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
from PIL import Image
from starlette.websockets import WebSocket

from tests.emulators.comfyui.media import interpolated_mp4, preview_frame, sample_mp4, sample_png, scaled_png
from tests.emulators.comfyui.nodes import INTERPOLATORS, OUTPUT_NODES, SAMPLERS, VIDEO_LOADERS, WAN_MODELS, closure


@dataclass
class ComfyKnobs:
    """Fault and behaviour knobs; change them any time (``emu.configure(...)`` or ``POST /_admin/config``)."""

    job_seconds: float = 1.0
    progress_steps: int = 4
    history_delay_s: float = 0.15
    control_answer_delay_s: float = 0.0  # POST /queue and /interrupt act at once and answer this much later
    late_history_s: float = 0.0
    drop_websocket_after_s: float | None = None
    silent_websocket: bool = False
    silent_reconnects: bool = False
    error_node: str | None = None
    error_times: int | None = None
    error_type: str = "torch.OutOfMemoryError"
    error_message: str = "Allocation on device"
    combo_form: str = "v1"
    installed_models: dict[str, list[str]] = field(
        default_factory=lambda: {folder: list(files) for folder, files in WAN_MODELS.items()})
    missing_node_classes: list[str] = field(default_factory=list)
    output_key: str = "auto"
    binary_previews: bool = True
    prompt_status: int | None = None
    required_headers: dict[str, str] = field(default_factory=dict)
    required_cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class ComfyStats:
    submits: list[str] = field(default_factory=list)
    interrupts: int = 0
    queue_deletes: int = 0
    uploads: int = 0
    uploaded: list[str] = field(default_factory=list)  # the stored names, in order
    http_calls: int = 0
    ws_connects: int = 0
    frees: int = 0
    restarts: int = 0
    calls: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["calls"] = dict(self.calls)
        return data


@dataclass
class Job:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]

    @property
    def client_id(self) -> str | None:
        return self.extra_data.get("client_id")


class Stopped(Exception):
    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.data = data


def _now_ms() -> int:
    return int(time.time() * 1000)


class ComfyState:
    def __init__(self, root: Path, knobs: ComfyKnobs) -> None:
        self.root = root
        self.knobs = knobs
        self.stats = ComfyStats()
        for kind in ("input", "output", "temp"):
            (root / kind).mkdir(parents=True, exist_ok=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sockets: dict[str, WebSocket] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.dropped: set[str] = set()
        self.errors_raised = 0
        self._reset_memory()

    def _reset_memory(self) -> None:
        self.pending: list[Job] = []
        self.running: Job | None = None
        self.current_node: str | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.cache: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self.interrupt_requested = False
        self._wake = asyncio.Event()

    def reset_stats(self) -> None:
        self.stats = ComfyStats()

    def dir(self, kind: str) -> Path:
        return self.root / kind

    def images(self) -> set[str]:
        base = self.dir("input")
        return {path.relative_to(base).as_posix() for path in base.rglob("*") if path.is_file()}

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._spawn(self._worker())

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for socket in list(self.sockets.values()):
            await self._close(socket)
        self.sockets.clear()

    async def restart(self) -> None:
        """A server restart: queue, history, cache and sockets are lost; files on disk stay."""
        await self.stop()
        self._reset_memory()
        self.stats.restarts += 1
        self._spawn(self._worker())

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def enqueue(self, prompt_id: str, graph: dict[str, Any], extra_data: dict[str, Any],
                outputs: list[str], front: bool) -> int:
        self.counter += 1
        number = -self.counter if front else self.counter
        self.pending.append(Job(number, prompt_id, graph, extra_data, outputs))
        self.pending.sort(key=lambda job: job.number)
        self._wake.set()
        self._spawn(self.broadcast_status())
        return number

    def queue_remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    def delete(self, prompt_ids: list[str]) -> None:
        self.pending = [job for job in self.pending if job.prompt_id not in prompt_ids]

    def interrupt(self, prompt_id: str | None) -> None:
        if self.running and (prompt_id is None or prompt_id == self.running.prompt_id):
            self.interrupt_requested = True

    async def _close(self, socket: WebSocket, code: int = 1001) -> None:
        with contextlib.suppress(Exception):
            await socket.close(code)

    async def send(self, client_id: str | None, kind: str, data: dict[str, Any]) -> None:
        socket = self.sockets.get(client_id or "")
        if socket is None:
            return
        try:
            await socket.send_text(json.dumps({"type": kind, "data": data}))
        except Exception:
            self.sockets.pop(client_id or "", None)

    async def send_bytes(self, client_id: str | None, payload: bytes) -> None:
        socket = self.sockets.get(client_id or "")
        if socket is not None:
            try:
                await socket.send_bytes(payload)
            except Exception:
                self.sockets.pop(client_id or "", None)

    def status_message(self, sid: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}
        if sid:
            data["sid"] = sid
        return data

    async def broadcast_status(self) -> None:
        for client_id in list(self.sockets):
            await self.send(client_id, "status", self.status_message())

    async def greet(self, client_id: str) -> None:
        await self.send(client_id, "status", self.status_message(client_id))
        job = self.running
        if job and job.client_id == client_id and self.current_node:
            node = self.current_node
            await self.send(client_id, "executing", {"node": node, "display_node": node,
                                                     "prompt_id": job.prompt_id})

    async def _worker(self) -> None:
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            job = self.pending.pop(0)
            self.running, self.interrupt_requested = job, False
            try:
                await self._execute(job)
            finally:
                self.running, self.current_node = None, None

    async def _execute(self, job: Job) -> None:
        messages: list[list[Any]] = []

        async def event(kind: str, data: dict[str, Any]) -> None:
            data = {**data, "prompt_id": job.prompt_id, "timestamp": _now_ms()}
            messages.append([kind, data])
            await self.send(job.client_id, kind, data)

        await self.broadcast_status()
        await event("execution_start", {})
        key = json.dumps(job.graph, sort_keys=True)
        cached = self.cache.get(key)
        order = closure(job.graph, job.outputs)
        await event("execution_cached", {"nodes": order if cached else []})
        dropper = self._spawn(self._drop_later(job.client_id)) if self.knobs.drop_websocket_after_s else None
        try:
            outputs = cached or await self._run_nodes(job, order)
        except Stopped as stop:
            await event(stop.kind, stop.data)
            await self._finish(job, {}, messages, "error")
            return
        finally:
            if dropper:
                dropper.cancel()
        if cached:
            for node_id, output in outputs.items():
                await self.send(job.client_id, "executed", {"node": node_id, "display_node": node_id,
                                                            "output": output, "prompt_id": job.prompt_id})
        self.cache[key] = outputs
        await event("execution_success", {})
        await self._finish(job, outputs, messages, "success")

    async def _finish(self, job: Job, outputs: dict[str, Any], messages: list[list[Any]],
                      status: str) -> None:
        await asyncio.sleep(self.knobs.history_delay_s)
        entry = {"prompt": job.item(), "outputs": outputs,
                 "status": {"status_str": status, "completed": status == "success", "messages": messages},
                 "meta": {node_id: {"node_id": node_id, "display_node": node_id, "parent_node": None,
                                    "real_node_id": node_id} for node_id in outputs}}
        if self.knobs.late_history_s:
            self._spawn(self._write_later(job.prompt_id, entry, self.knobs.late_history_s))
        else:
            self.history[job.prompt_id] = entry
        self.running, self.current_node = None, None
        await self.broadcast_status()
        await self.send(job.client_id, "executing", {"node": None, "display_node": None,
                                                     "prompt_id": job.prompt_id})

    async def _write_later(self, prompt_id: str, entry: dict[str, Any], delay: float) -> None:
        await asyncio.sleep(delay)
        self.history[prompt_id] = entry

    async def _drop_later(self, client_id: str | None) -> None:
        await asyncio.sleep(self.knobs.drop_websocket_after_s or 0)
        socket = self.sockets.pop(client_id or "", None)
        if socket is not None:
            self.dropped.add(client_id or "")
            await self._close(socket, 1012)

    async def _pause(self, seconds: float, job: Job, node_id: str) -> None:
        end = time.monotonic() + seconds
        while True:
            if self.interrupt_requested:
                raise Stopped("execution_interrupted", {"node_id": node_id, "executed": [],
                                                        "node_type": job.graph[node_id]["class_type"]})
            left = end - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.02))

    def _failure(self, job: Job, node_id: str, exception_type: str, message: str) -> Stopped:
        node = job.graph[node_id]
        return Stopped("execution_error", {
            "node_id": node_id, "node_type": node["class_type"], "executed": [],
            "exception_type": exception_type,
            "exception_message": message, "traceback": [f"Traceback: {exception_type}: {message}\n"],
            "current_inputs": node.get("inputs", {}), "current_outputs": {}})

    async def _run_nodes(self, job: Job, order: list[str]) -> dict[str, Any]:
        steps = max(1, self.knobs.progress_steps)
        samplers = [node_id for node_id in order if job.graph[node_id]["class_type"] in SAMPLERS]
        timed = samplers or [job.outputs[0]]
        step_s = self.knobs.job_seconds / (len(timed) * steps)
        outputs: dict[str, Any] = {}
        for node_id in order:
            await self._pause(0, job, node_id)
            class_type = job.graph[node_id]["class_type"]
            self.current_node = node_id
            await self.send(job.client_id, "executing", {"node": node_id, "display_node": node_id,
                                                         "prompt_id": job.prompt_id})
            if node_id == self.knobs.error_node and (self.knobs.error_times is None
                                                     or self.errors_raised < self.knobs.error_times):
                self.errors_raised += 1
                raise self._failure(job, node_id, self.knobs.error_type, self.knobs.error_message)
            if class_type == "LoadImage":
                self._check_image(job, node_id)
            if class_type in VIDEO_LOADERS:
                self._check_video(job, node_id)
            if node_id in timed:
                await self._progress(job, node_id, steps, step_s)
            if class_type in OUTPUT_NODES:
                outputs[node_id] = self._write_output(job, node_id)
                executed = {"node": node_id, "display_node": node_id, "output": outputs[node_id],
                            "prompt_id": job.prompt_id}
                await self.send(job.client_id, "executed", executed)
        return outputs

    async def _progress(self, job: Job, node_id: str, steps: int, step_s: float) -> None:
        for step in range(1, steps + 1):
            await self._pause(step_s, job, node_id)
            await self.send(job.client_id, "progress", {"value": step, "max": steps, "node": node_id,
                                                        "prompt_id": job.prompt_id})
            state = {"value": step, "max": steps, "state": "running", "node_id": node_id,
                     "prompt_id": job.prompt_id, "display_node_id": node_id, "parent_node_id": None,
                     "real_node_id": node_id}
            await self.send(job.client_id, "progress_state", {"prompt_id": job.prompt_id,
                                                              "nodes": {node_id: state}})
            if step == 1 and self.knobs.binary_previews:
                await self.send_bytes(job.client_id, preview_frame())

    def _check_image(self, job: Job, node_id: str) -> None:
        path = self.dir("input") / job.graph[node_id]["inputs"]["image"]
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as exc:
            raise self._failure(job, node_id, "PIL.UnidentifiedImageError", str(exc)) from None

    def _check_video(self, job: Job, node_id: str) -> None:
        node = job.graph[node_id]
        path = self.dir("input") / node["inputs"][VIDEO_LOADERS[node["class_type"]]]
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise ValueError("no video stream")
        except (av.FFmpegError, ValueError) as exc:
            raise self._failure(job, node_id, "av.error.InvalidDataError", str(exc)) from None

    def _made(self, job: Job, node_id: str, extension: str) -> bytes:
        """What the output node saves: from an uploaded input, the image scaled by the graph's ImageScaleBy nodes
        (SaveImage), or the video with its frames and fps multiplied by its interpolator nodes' ``multiplier``
        (a video save node); otherwise (no such input or node) the sample PNG or MP4."""
        order = closure(job.graph, [node_id])
        nodes = [job.graph[n] for n in order]
        if extension == ".png":
            loads = [n["inputs"]["image"] for n in nodes if n["class_type"] == "LoadImage"]
            scales = [float(n["inputs"]["scale_by"]) for n in nodes if n["class_type"] == "ImageScaleBy"]
            if loads and scales:
                return scaled_png(self.dir("input") / loads[0], math.prod(scales))
            return sample_png()
        videos = [n["inputs"][VIDEO_LOADERS[n["class_type"]]] for n in nodes if n["class_type"] in VIDEO_LOADERS]
        if videos:
            multiplier = math.prod(int(n["inputs"].get("multiplier", 2)) for n in nodes
                                   if n["class_type"] in INTERPOLATORS)
            return interpolated_mp4(self.dir("input") / videos[0], multiplier)
        return sample_mp4()

    def _write_output(self, job: Job, node_id: str) -> dict[str, Any]:
        class_type = job.graph[node_id]["class_type"]
        key, extension = OUTPUT_NODES[class_type]
        prefix = str(job.graph[node_id].get("inputs", {}).get("filename_prefix") or "ComfyUI")
        subfolder, base = posixpath.split(prefix)
        folder = self.dir("output") / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        pattern = re.compile(rf"^{re.escape(base)}_(\d{{5}})_\.")
        used = [int(m.group(1)) for path in folder.iterdir() if (m := pattern.match(path.name))]
        filename = f"{base}_{max(used, default=0) + 1:05d}_{extension}"
        (folder / filename).write_bytes(self._made(job, node_id, extension))
        item: dict[str, Any] = {"filename": filename, "subfolder": subfolder, "type": "output"}
        if self.knobs.output_key != "auto":
            key = self.knobs.output_key
        if key == "gifs":
            item |= {"format": "video/h264-mp4", "frame_rate": 16.0, "workflow": f"{base}_00001.png",
                     "fullpath": str(folder / filename)}
            return {"gifs": [item]}
        if key == "images" and extension != ".png":
            return {"images": [item], "animated": [True]}
        return {key: [item]}
