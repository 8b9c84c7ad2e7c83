"""The fal emulator's queue: jobs, an account concurrency limit, fault knobs and counters."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.emulators.common.admin import apply_knobs
from tests.emulators.fal.llm import is_llm, llm_result
from tests.emulators.fal.media import MediaStore
from tests.emulators.fal.schemas import check_body, output_kind, schema_for

NAMESPACES = ("workflows", "comfy")
LOG_STEPS = 4
IMAGE_FIELDS = ("image_url", "start_image_url", "first_frame_url", "end_image_url", "tail_image_url",
                "last_frame_url")
REQUIRED: dict[str, tuple[str, ...]] = {
    "fal-ai/kling-video/v3/": ("prompt", "start_image_url"),
    "fal-ai/kling-video/v2.6/": ("prompt", "start_image_url"),
    "fal-ai/flux/": ("prompt",),
}
DEFAULT_REQUIRED = ("prompt", "image_url")


@dataclass
class EmulatorConfig:
    queue_delay_s: float = 0.0
    processing_s: float = 1.0
    fail_submit_422: bool = False
    fail_result_422: bool = False
    burst_429: int = 0
    status_500_count: int = 0
    status_stall_s: float = 0.0
    account_concurrency: int = 2


@dataclass
class Job:
    id: str
    endpoint: str
    app_base: str
    arguments: dict[str, Any]
    submitted_at: float
    queue_delay_s: float
    processing_s: float
    result_error: list[dict[str, Any]] | None
    status: str = "IN_QUEUE"
    started_at: float | None = None
    started_wall: float = 0.0


@dataclass
class Counters:
    submits: dict[str, int] = field(default_factory=dict)
    max_in_progress: int = 0
    cancels: list[str] = field(default_factory=list)
    completed: int = 0
    requests_total: int = 0
    status_calls: int = 0
    result_calls: int = 0
    rate_limited: int = 0
    uploads: int = 0
    media_downloads: dict[str, int] = field(default_factory=dict)
    image_fetches: list[str] = field(default_factory=list)


def app_base(endpoint: str) -> str:
    parts = endpoint.strip("/").split("/")
    return "/".join(parts[:3] if parts[0] in NAMESPACES else parts[:2])


def _detail(loc: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", loc], "msg": msg, "type": kind}


def _short(value: Any) -> Any:
    return value[:80] + "..." if isinstance(value, str) and len(value) > 80 else value


def _times(job: Job) -> dict[str, float | None]:
    """Wall-clock start and end of the job's processing (the end is when processing_s ran out)."""
    started = job.started_wall if job.started_at is not None else None
    ended = started + job.processing_s if started is not None and job.status == "COMPLETED" else None
    return {"started_wall": started, "ended_wall": ended}


def validate(endpoint: str, body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return [_detail("", "body must be a JSON object", "type_error.dict")]
    fields = schema_for(endpoint)
    if fields is not None:
        return check_body(fields, body)
    matches = [req for prefix, req in REQUIRED.items() if endpoint.startswith(prefix)]
    required = matches[0] if matches else DEFAULT_REQUIRED
    errors = [_detail(name, "field required", "missing") for name in required if not body.get(name)]
    duration = body.get("duration")
    if duration is not None:
        veo = endpoint.startswith(("fal-ai/veo2/", "fal-ai/veo3"))
        text = duration[:-1] if veo and isinstance(duration, str) and duration.endswith("s") else duration
        if not (isinstance(text, str) and text.isdigit()):
            errors.append(_detail("duration", f"unexpected value {duration!r}", "literal_error"))
    return errors


def _image_error(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    for name in IMAGE_FIELDS:
        value = body.get(name)
        if value is not None and not str(value).startswith(("data:image/", "https://", "http://")):
            return [_detail(name, "could not load image", "image_load_error")]
    return None


def _is_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception:
        return False
    return True


class QueueState:
    def __init__(self, base_url: str, config: EmulatorConfig, media: MediaStore) -> None:
        self.base_url = base_url
        self.config = config
        self._initial = asdict(config)
        self.media = media
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.counters = Counters()

    def configure(self, **knobs: Any) -> dict[str, Any]:
        with self._lock:
            return apply_knobs(self.config, knobs)

    def reset(self) -> None:
        with self._lock:
            for name, value in self._initial.items():
                setattr(self.config, name, value)
            self.jobs.clear()
            self.counters = Counters()

    def finish_running(self) -> int:
        """Let every job in progress finish now; returns how many there were."""
        now = time.monotonic()
        with self._lock:
            running = [job for job in self.jobs.values() if job.status == "IN_PROGRESS"]
            for job in running:
                job.processing_s = max(0.0, now - (job.started_at or now))
        self.advance()
        return len(running)

    def count_upload(self) -> None:
        with self._lock:
            self.counters.uploads += 1

    def count_download(self, name: str) -> None:
        with self._lock:
            self.counters.media_downloads[name] = self.counters.media_downloads.get(name, 0) + 1

    async def _fetch_images(self, body: Any) -> list[dict[str, Any]] | None:
        """fal downloads an http(s) image URL itself; one it cannot load fails the request at result time."""
        if not isinstance(body, dict):
            return None
        for name in IMAGE_FIELDS:
            url = body.get(name)
            if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
                continue
            if url.startswith(f"{self.base_url}/media/"):
                found = self.media.get(url.removeprefix(f"{self.base_url}/media/"))
                data = found[0] if found else b""
            else:
                with self._lock:
                    self.counters.image_fetches.append(url)
                try:
                    async with httpx.AsyncClient(verify=False, timeout=10, follow_redirects=True) as client:
                        answer = await client.get(url)
                    data = answer.content if answer.status_code == 200 else b""
                except httpx.HTTPError:
                    data = b""
            if not _is_image(data):
                return [_detail(name, "could not load image", "image_load_error")]
        return None

    def stats(self) -> dict[str, Any]:
        self.advance()
        with self._lock:
            c = self.counters
            by_status: dict[str, int] = {}
            for job in self.jobs.values():
                by_status[job.status] = by_status.get(job.status, 0) + 1
            return {
                "submits": {"total": sum(c.submits.values()), "by_endpoint": dict(c.submits)},
                "max_in_progress": c.max_in_progress, "cancels": list(c.cancels), "completed": c.completed,
                "requests_total": c.requests_total, "status_calls": c.status_calls,
                "result_calls": c.result_calls, "rate_limited": c.rate_limited, "uploads": c.uploads,
                "media_downloads": dict(c.media_downloads), "image_fetches": list(c.image_fetches),
                "by_status": by_status,
                "jobs": {j.id: {"endpoint": j.endpoint, "status": j.status,
                                "arguments": {k: _short(v) for k, v in j.arguments.items()},
                                **_times(j)}
                         for j in self.jobs.values()},
            }

    def advance(self) -> None:
        now = time.monotonic()
        with self._lock:
            running = 0
            for job in self.jobs.values():
                if job.status == "IN_PROGRESS" and now >= (job.started_at or now) + job.processing_s:
                    job.status = "COMPLETED"
                    self.counters.completed += 1
                running += job.status == "IN_PROGRESS"
            for job in self.jobs.values():
                if running >= self.config.account_concurrency:
                    break
                if job.status == "IN_QUEUE" and now >= job.submitted_at + job.queue_delay_s:
                    job.status, job.started_at, job.started_wall = "IN_PROGRESS", now, time.time()
                    running += 1
            self.counters.max_in_progress = max(self.counters.max_in_progress, running)

    def _urls(self, job: Job) -> dict[str, str]:
        base = f"{self.base_url}/{job.app_base}/requests/{job.id}"
        return {"status_url": f"{base}/status", "response_url": base, "cancel_url": f"{base}/cancel"}

    def _position(self, job: Job) -> int:
        queued = [j.id for j in self.jobs.values() if j.status == "IN_QUEUE"]
        return queued.index(job.id)

    def _logs(self, job: Job) -> list[dict[str, Any]]:
        if job.started_at is None:
            return []
        elapsed = time.monotonic() - job.started_at
        steps = LOG_STEPS if job.status == "COMPLETED" else min(
            LOG_STEPS, 1 + int(elapsed * LOG_STEPS / max(job.processing_s, 1e-6)))
        def stamp(k: int) -> str:
            offset = (k - 1) * job.processing_s / LOG_STEPS
            return datetime.fromtimestamp(job.started_wall + offset, UTC).isoformat()

        return [{"message": f"step {k}/{LOG_STEPS}", "level": "INFO", "source": "user", "timestamp": stamp(k)}
                for k in range(1, steps + 1)]

    def _gate(self, kind: str) -> Response | None:
        """Counts the call and answers a pending fault (429 burst, status 500) if one is due."""
        with self._lock:
            self.counters.requests_total += 1
            if kind == "status":
                self.counters.status_calls += 1
            elif kind == "result":
                self.counters.result_calls += 1
            if self.config.burst_429 > 0:
                self.config.burst_429 -= 1
                self.counters.rate_limited += 1
                return JSONResponse({"detail": "Too many requests"}, 429)
            if kind == "status" and self.config.status_500_count > 0:
                self.config.status_500_count -= 1
                return JSONResponse({"detail": "Internal server error"}, 500)
        return None

    async def handle(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/")
        kind = "submit"
        if "/requests/" in path:
            tail = path.split("/requests/", 1)[1].split("/")
            kind = {1: "result", 2: tail[-1]}.get(len(tail), "unknown")
        if (fault := self._gate(kind)) is not None:
            return fault
        if not request.headers.get("authorization", "").startswith("Key "):
            return JSONResponse({"detail": "No user found for Key ID and Secret"}, 401)
        self.advance()
        if kind == "submit":
            if request.method != "POST":
                return JSONResponse({"detail": "Method not allowed"}, 405)
            try:
                body = await request.json()
            except ValueError:
                body = None
            return self._submit(path, body, await self._fetch_images(body))
        prefix, tail_text = path.split("/requests/", 1)
        with self._lock:
            job = self.jobs.get(tail_text.split("/")[0])
        if job is None or job.app_base != prefix:
            return JSONResponse({"detail": "Request not found"}, 404)
        if kind == "status" and request.method == "GET":
            if self.config.status_stall_s > 0:
                await asyncio.sleep(self.config.status_stall_s)
            return self._status(job, request.query_params.get("logs") in ("1", "true", "True"))
        if kind == "result" and request.method == "GET":
            return self._result(job)
        if kind == "cancel" and request.method == "PUT":
            return self._cancel(job)
        return JSONResponse({"detail": "Not found"}, 404)

    def _submit(self, endpoint: str, body: Any, fetch_error: list[dict[str, Any]] | None = None) -> Response:
        errors = [_detail("prompt", "rejected by the emulator's fail_submit_422 knob", "value_error")] \
            if self.config.fail_submit_422 else validate(endpoint, body)
        if errors:
            return JSONResponse({"detail": errors}, 422)
        cfg = self.config
        result_error = ([_detail("image_url", "could not load image", "image_load_error")]
                        if cfg.fail_result_422 else _image_error(body) or fetch_error)
        job = Job(uuid.uuid4().hex, endpoint, app_base(endpoint), body, time.monotonic(), cfg.queue_delay_s,
                  cfg.processing_s, result_error)
        with self._lock:
            self.jobs[job.id] = job
            self.counters.submits[endpoint] = self.counters.submits.get(endpoint, 0) + 1
        self.advance()
        with self._lock:
            position = self._position(job) if job.status == "IN_QUEUE" else 0
        return JSONResponse({"request_id": job.id, "gateway_request_id": job.id, "status": "IN_QUEUE",
                             "queue_position": position, **self._urls(job)},
                            headers={"x-fal-request-id": job.id})

    def _status(self, job: Job, with_logs: bool) -> Response:
        with self._lock:
            if job.status == "IN_QUEUE":
                return JSONResponse({"status": "IN_QUEUE", "queue_position": self._position(job),
                                     "response_url": self._urls(job)["response_url"]}, 202)
            logs = self._logs(job) if with_logs else None
            if job.status == "IN_PROGRESS":
                return JSONResponse({"status": "IN_PROGRESS", "logs": logs,
                                     "response_url": self._urls(job)["response_url"]}, 202)
            body: dict[str, Any] = {"status": "COMPLETED", "logs": logs,
                                    "metrics": {"inference_time": job.processing_s}, **self._urls(job)}
            if job.status == "CANCELLED":
                body |= {"error": "Request was cancelled", "error_type": "cancelled"}
            elif job.result_error:
                body |= {"error": "Invalid status code: 422", "error_type": "validation_error"}
            return JSONResponse(body, 200)

    def _result(self, job: Job) -> Response:
        if job.status == "CANCELLED":
            return JSONResponse({"detail": "Request was cancelled"}, 400)
        if job.status != "COMPLETED":
            return JSONResponse({"detail": "Request is still in progress"}, 400)
        if job.result_error:
            return JSONResponse({"detail": job.result_error}, 422, headers={"x-fal-retryable": "false"})
        if is_llm(job.endpoint):
            return JSONResponse(llm_result(job.arguments))
        seed = job.arguments.get("seed", 42)
        if output_kind(job.endpoint) == "images" or "/flux/" in f"/{job.endpoint}/":
            size = job.arguments.get("image_size")
            width, height = (size["width"], size["height"]) if isinstance(size, dict) else (1024, 768)
            fmt = "png" if job.arguments.get("output_format") == "png" else "jpeg"
            image = {"url": f"{self.base_url}/media/image/{width}x{height}.{fmt}", "width": width,
                     "height": height, "content_type": f"image/{fmt}"}
            return JSONResponse({"images": [image], "seed": seed, "prompt": job.arguments.get("prompt"),
                                 "timings": {"inference": job.processing_s}, "has_nsfw_concepts": [False]})
        return JSONResponse({"video": self.media.video_file(self.base_url), "seed": seed})

    def _cancel(self, job: Job) -> Response:
        with self._lock:
            self.counters.cancels.append(job.id)
            if job.status in ("COMPLETED", "CANCELLED"):
                return JSONResponse({"status": "ALREADY_COMPLETED"}, 400)
            job.status = "CANCELLED"
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, 202)
