"""Opt-in fallback (``reelflow gpu set --fallback-model wan-2.5-i2v``): when the GPU endpoint does not answer
before anything was submitted, the video is made on the named cloud model instead, and the run records it:
a ``fallback`` event (from, to, reason, adjusted settings) and the GPU step's detail."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from reelflow.core.availability import availability
from reelflow.core.catalog import ModelEntry, load_catalog
from reelflow.core.domain import GPU_BACKENDS, MediaRef, ProviderOutput, VideoParams
from reelflow.core.spec import PipelineSpec, check_spec, video_params
from reelflow.errors import GpuUnreachableError, SpecError
from reelflow.runs import events

log = logging.getLogger(__name__)

I2vTask = Callable[[str, str, MediaRef, VideoParams], Awaitable[ProviderOutput]]


def adapt_spec(spec: PipelineSpec, target: ModelEntry) -> tuple[PipelineSpec, dict[str, Any]]:
    """The spec for ``target``: settings it does not accept are replaced by its nearest or default values."""
    duration = spec.duration if spec.duration is not None else (
        spec.frames / spec.fps if spec.frames and spec.fps else None)
    candidate = spec.model_copy(update={"model": target.id})
    changed: dict[str, Any] = {}
    for _ in range(8):
        try:
            check_spec(candidate)
            return candidate, changed
        except SpecError as exc:
            update = _fix(exc.field, candidate, target, duration)
            if update is None:
                raise
            changed |= update
            candidate = candidate.model_copy(update=update)
    check_spec(candidate)
    return candidate, changed


def _fix(field: str, spec: PipelineSpec, target: ModelEntry, duration: float | None) -> dict[str, Any] | None:
    allowed = target.inputs.durations
    if field in ("duration", "frames") and allowed:
        wanted = duration or target.inputs.default_duration or allowed[0]
        return {"duration": min(allowed, key=lambda d: abs(d - wanted)), "frames": None}
    if field in ("duration", "frames"):
        return {"duration": None, "frames": None}
    if field in ("fps", "resolution", "negative_prompt", "seed") and getattr(spec, field) is not None:
        return {field: None}
    return None


async def _target(model: ModelEntry, reason: GpuUnreachableError) -> ModelEntry | None:
    from reelflow.gpu.endpoint import find_endpoint

    gpu = await find_endpoint()
    if gpu is None or not gpu.fallback_model:
        return None
    try:
        target = load_catalog().get(gpu.fallback_model, kind="i2v")
    except SpecError as exc:
        log.warning("the GPU fallback model is unusable: %s", exc)
        return None
    missing = availability(target).missing if target.backend not in GPU_BACKENDS else ["it runs on the GPU too"]
    if missing:
        log.warning("cannot fall back from %s to %s: %s", model.id, target.id, "; ".join(missing))
        return None
    return target


async def run_i2v(tasks: Mapping[str, I2vTask], run_id: str, model: ModelEntry, image: MediaRef, spec: PipelineSpec,
                  size: tuple[int, int], seed: int) -> ProviderOutput:
    """Run the model's i2v task; for a GPU model whose endpoint is unreachable, the configured fallback model."""
    try:
        return await tasks[model.backend](run_id, model.id, image, video_params(spec, model, size, seed))
    except GpuUnreachableError as exc:
        if model.backend not in GPU_BACKENDS or (target := await _target(model, exc)) is None:
            raise
        reason = exc
    adapted, changed = adapt_spec(spec, target)
    events.emit(run_id, "fallback", f"the GPU endpoint is unreachable; making the video on {target.id} instead "
                f"({reason})", data={"from": model.id, "to": target.id, "reason": str(reason), "adjusted": changed})
    return await tasks[target.backend](run_id, target.id, image, video_params(adapted, target, size, seed))
