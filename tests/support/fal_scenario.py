"""Runs one fal provider scenario in a fresh process and prints ``RESULT {json}``.

``python -m tests.support.fal_scenario '{"op": "run", ...}'`` with the environment from
``prepare_fal_env`` (fal-client reads its hosts when imported, so each scenario gets its own
process). Errors are reported in the JSON, not raised, so the test can assert on them.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import time
from typing import Any

import httpx

from reelflow.core.catalog import load_catalog
from reelflow.core.domain import ImageParams, VideoParams
from reelflow.providers import fal

BASE_URL = f"https://{os.environ.get('FAL_QUEUE_RUN_HOST', '')}"
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ"
         "/pLvAAAAAElFTkSuQmCC")


def fast_fal_retries(max_attempts: int = 3, base_delay: float = 0.01) -> None:
    """Fewer fal-client retries (the async client has fixed 0.1 s backoff steps)."""
    import fal_client.client

    fal_client.client.MAX_ATTEMPTS = max_attempts
    fal_client.client.BASE_DELAY = base_delay


def point_fal_uploads_at(base_url: str) -> None:
    """Send fal-client uploads (token + CDN) to the emulator. Call before the first upload."""
    import fal_client.client

    fal_client.client.REST_URL = base_url
    fal_client.client.CDN_URL = base_url


def _update(update: fal.FalUpdate) -> dict[str, Any]:
    if isinstance(update, fal.Queued):
        return {"type": "Queued", "position": update.position}
    logs = [line.message for line in update.new_logs]
    if isinstance(update, fal.InProgress):
        return {"type": "InProgress", "logs": logs}
    return {"type": "Completed", "logs": logs, "error": update.error}


def _error(exc: BaseException) -> dict[str, Any]:
    attrs = {name: getattr(exc, name) for name in ("status_code", "detail", "request_id", "deadline_s",
                                                   "cancel_note", "model_id") if hasattr(exc, name)}
    return {"type": type(exc).__name__, "bases": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc), "attrs": attrs}


def _fetch(url: str, role: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    facts: dict[str, Any] = {"bytes": len(response.content), "content_type": response.headers["content-type"],
                             "sha256": hashlib.sha256(response.content).hexdigest()}
    if role == "video":
        import av

        with av.open(io.BytesIO(response.content)) as container:
            stream = container.streams.video[0]
            facts |= {"frames": sum(1 for _ in container.decode(stream)), "width": stream.width,
                      "height": stream.height}
    elif role == "image":
        from PIL import Image

        with Image.open(io.BytesIO(response.content)) as image:
            facts |= {"width": image.width, "height": image.height, "format": image.format}
    return facts


def _arguments(op: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    if "model" not in op:
        return op["endpoint"], op["arguments"], op.get("kind", "video")
    model = load_catalog().get(op["model"])
    image = op.get("image_url", PIXEL)
    if model.kind in ("t2i", "i2i"):
        params: VideoParams | ImageParams = ImageParams(prompt="a red fox", width=1024, height=768, seed=5)
        return model.endpoint, fal.build_arguments(model, params, image if model.kind == "i2i" else None), "image"
    params = VideoParams(prompt="a red fox runs", negative_prompt="blur",
                         duration_s=model.inputs.default_duration or 5.0,
                         resolution=model.inputs.default_resolution, seed=5)
    end = image if model.inputs.end_image == "required" else None
    return model.endpoint, fal.build_arguments(model, params, image, end), "video"


async def _admin(config: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        (await client.post(f"{BASE_URL}/_admin/config", json=config)).raise_for_status()


async def _run(queue: fal.FalQueue, op: dict[str, Any], out: dict[str, Any]) -> None:
    endpoint, arguments, kind = _arguments(op)
    for _ in range(op.get("blockers", 0)):
        await queue.submit(endpoint, arguments)
    if "request_id" in op:
        out["request_id"] = op["request_id"]
    else:
        out["request_id"] = await queue.submit(endpoint, arguments)
        if op.get("admin_after_submit"):
            await _admin(op["admin_after_submit"])
    if op.get("submit_only"):
        return
    updates: list[dict[str, Any]] = out.setdefault("updates", [])

    async def record(update: fal.FalUpdate) -> None:
        updates.append(_update(update))

    result = await queue.wait(endpoint, out["request_id"], on_update=record,
                              deadline_s=op.get("deadline_s", 20.0), poll_interval_s=op.get("poll_s", 0.05))
    parse = fal.parse_image_output if kind == "image" else fal.parse_video_output
    output = parse(result, request_id=out["request_id"])
    out["output"] = output.model_dump(mode="json")
    out["media"] = await asyncio.to_thread(_fetch, output.media.url or "", output.role)


async def _many(queue: fal.FalQueue, op: dict[str, Any], out: dict[str, Any]) -> None:
    async def one(model: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        try:
            await _run(queue, {**op, "model": model}, result)
        except Exception as exc:
            result["error"] = _error(exc)
        return result

    out["runs"] = dict(zip(op["models"], await asyncio.gather(*(one(m) for m in op["models"])), strict=True))


async def _lifecycle(queue: fal.FalQueue, op: dict[str, Any], out: dict[str, Any]) -> None:
    endpoint, arguments, _ = _arguments(op)
    request_id = out["request_id"] = await queue.submit(endpoint, arguments)
    out["status_before"] = _update(await queue.status(endpoint, request_id))
    await queue.cancel(endpoint, request_id)
    out["status_after"] = _update(await queue.status(endpoint, request_id))
    try:
        await queue.cancel(endpoint, request_id)
    except Exception as exc:
        out["second_cancel"] = _error(exc)


async def _credentials(queue: fal.FalQueue, op: dict[str, Any], out: dict[str, Any]) -> None:
    out["missing"] = fal.credentials_missing()
    for name, call in (("submit", queue.submit(op["endpoint"], {"prompt": "x"})),
                       ("wait", queue.wait(op["endpoint"], "0" * 32, deadline_s=2.0))):
        try:
            await call
            out[name] = "ok"
        except Exception as exc:
            out[name] = _error(exc)


async def _image_reference(op: dict[str, Any], out: dict[str, Any]) -> None:
    data = os.urandom(op["size"])
    reference = await fal.image_reference(data, "image/png", file_name="big.png")
    out["reference_prefix"] = reference[:40]
    if reference.startswith("https://"):
        fetched = await asyncio.to_thread(_fetch, reference, "raw")
        out["same_bytes"] = fetched["sha256"] == hashlib.sha256(data).hexdigest()


async def main(op: dict[str, Any]) -> dict[str, Any]:
    fast_fal_retries()
    point_fal_uploads_at(BASE_URL)
    policy = fal.RetryPolicy(attempts=op.get("attempts", 6), initial_s=0.05, max_s=0.3,
                             call_timeout_s=op.get("call_timeout_s", 5.0))
    out: dict[str, Any] = {}
    started = time.monotonic()
    try:
        async with fal.FalQueue(retry=policy) as queue:
            if op["op"] == "run":
                await _run(queue, op, out)
            elif op["op"] == "many":
                await _many(queue, op, out)
            elif op["op"] == "lifecycle":
                await _lifecycle(queue, op, out)
            elif op["op"] == "credentials":
                await _credentials(queue, op, out)
            elif op["op"] == "image_reference":
                await _image_reference(op, out)
            else:
                raise ValueError(f"unknown op {op['op']}")
    except Exception as exc:
        out["error"] = _error(exc)
    out["elapsed_s"] = time.monotonic() - started
    return out


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(main(json.loads(sys.argv[1]))), default=str), flush=True)
