"""``/api/models``: the catalog with availability and a price estimate for the given inputs."""

from __future__ import annotations

import re

from fastapi import APIRouter, Path, Query

from reelflow.core.availability import availability
from reelflow.core.catalog import ModelEntry, Price, load_catalog
from reelflow.errors import SpecError
from reelflow.web.errors import ApiError
from reelflow.web.schemas import ModelOut, PriceOut

router = APIRouter(prefix="/api/models", tags=["models"])
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")


def price_text(price: Price) -> str:
    if price.unit == "free":
        return "free"
    if price.unit == "second" and price.by_resolution:
        return "per second: " + ", ".join(f"${usd:g} at {res}" for res, usd in price.by_resolution.items())
    if price.unit == "second":
        return f"${price.usd:g} per second"
    if price.unit == "clip":
        return (f"${price.base_usd:g} per {price.base_seconds:g} s clip, "
                f"+${price.extra_usd_per_second or 0:g} per extra second")
    if price.unit == "megapixel":
        return f"${price.usd:g} per megapixel"
    return "GPU time × your $/hour"


def _megapixels(model: ModelEntry, resolution: str | None) -> float | None:
    size = _SIZE.match(resolution or model.inputs.default_resolution or "")
    return int(size.group(1)) * int(size.group(2)) / 1_000_000 if size else None


def priced_seconds(model: ModelEntry, duration: float | None) -> float | None:
    """The duration the model would really make: the shortest offered one that is long enough, or the range's
    nearest end (so a 2 s request is priced as the 5 s clip a 5-or-10 s model makes at least)."""
    inputs = model.inputs
    if duration is None:
        return inputs.default_duration
    if inputs.durations:
        return next((d for d in sorted(inputs.durations) if d >= duration), max(inputs.durations))
    if inputs.duration_range:
        low, high = inputs.duration_range
        return min(max(duration, low), high)
    return duration


def describe(model: ModelEntry, duration: float | None, resolution: str | None,
             gpu_usd_per_hour: float | None, gpu_seconds: float | None) -> ModelOut:
    seconds = priced_seconds(model, duration)
    label = resolution or model.inputs.default_resolution
    estimate = model.price.estimate(seconds=seconds, megapixels=_megapixels(model, resolution), resolution=label,
                                    gpu_usd_per_hour=gpu_usd_per_hour, gpu_seconds=gpu_seconds)
    found = availability(model)
    return ModelOut(id=model.id, name=model.name, kind=model.kind, backend=model.backend, ai=model.ai,
                    description=model.description, speed_hint=model.speed_hint,
                    inputs=model.inputs.model_dump(mode="json", exclude_none=True),
                    price=PriceOut(unit=model.price.unit, text=price_text(model.price), estimate_usd=estimate),
                    available=found.available, missing=found.missing)


Duration = Query(None, gt=0, le=3600, description="Seconds of video to price (default: the model's default).")
Resolution = Query(None, max_length=20, description="Resolution to price, e.g. 720p.")
GpuRate = Query(None, ge=0, le=1000, description="Your GPU's $/hour, to price GPU models.")
GpuSeconds = Query(None, ge=0, le=86400, description="Expected GPU seconds per job, to price GPU models.")


@router.get("", response_model=list[ModelOut])
def list_models(kind: str | None = Query(None, pattern="^(i2v|t2i)$"), duration: float | None = Duration,
                resolution: str | None = Resolution, gpu_usd_per_hour: float | None = GpuRate,
                gpu_seconds: float | None = GpuSeconds) -> list[ModelOut]:
    """Every model (or one ``kind``), whether it can run here and what is missing, and its price."""
    return [describe(m, duration, resolution, gpu_usd_per_hour, gpu_seconds)
            for m in load_catalog().models if kind is None or m.kind == kind]


@router.get("/{model_id}", response_model=ModelOut, responses={404: {"description": "Unknown model"}})
def get_model(model_id: str = Path(max_length=100), duration: float | None = Duration,
              resolution: str | None = Resolution, gpu_usd_per_hour: float | None = GpuRate,
              gpu_seconds: float | None = GpuSeconds) -> ModelOut:
    try:
        model = load_catalog().get(model_id)
    except SpecError as exc:
        raise ApiError(404, exc.message, "model_id") from None
    return describe(model, duration, resolution, gpu_usd_per_hour, gpu_seconds)
