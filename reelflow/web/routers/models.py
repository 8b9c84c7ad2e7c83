"""``/api/models``: the catalog with availability and a price estimate for the given inputs."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query

from reelflow.core.availability import availability
from reelflow.core.catalog import ModelEntry, load_catalog
from reelflow.errors import ApiError, SpecError
from reelflow.web.schemas import ModelOut, PriceOut

router = APIRouter(prefix="/api/models", tags=["models"])


def describe(model: ModelEntry, duration: float | None, resolution: str | None,
             gpu_usd_per_hour: float | None, gpu_seconds: float | None, audio: bool = False) -> ModelOut:
    estimate = model.estimate_usd(duration=duration, resolution=resolution, gpu_usd_per_hour=gpu_usd_per_hour,
                                  gpu_seconds=gpu_seconds, audio=audio and model.inputs.audio)
    found = availability(model)
    return ModelOut(id=model.id, name=model.name, kind=model.kind, backend=model.backend, ai=model.ai,
                    description=model.description, speed_hint=model.speed_hint,
                    inputs=model.inputs.model_dump(mode="json", exclude_none=True),
                    price=PriceOut(unit=model.price.unit, text=model.price.text(), estimate_usd=estimate,
                                    source=model.price.source, confirmed=model.price.confirmed),
                    available=found.available, missing=found.missing, unchecked=found.unchecked)


Duration = Query(None, gt=0, le=3600, description="Seconds of video to price (default: the model's default).")
Resolution = Query(None, max_length=20, description="Resolution to price, e.g. 720p.")
GpuRate = Query(None, ge=0, le=1000, description="Your GPU's $/hour, to price GPU models.")
GpuSeconds = Query(None, ge=0, le=86400, description="Expected GPU seconds per job, to price GPU models.")
Audio = Query(False, description="Price with generated audio on (models that can add it).")


@router.get("", response_model=list[ModelOut])
def list_models(kind: str | None = Query(None, pattern="^(i2v|t2v|t2i|i2i|llm)$"), duration: float | None = Duration,
                resolution: str | None = Resolution, gpu_usd_per_hour: float | None = GpuRate,
                gpu_seconds: float | None = GpuSeconds, audio: bool = Audio) -> list[ModelOut]:
    """Every model (or one ``kind``), whether it can run here and what is missing, and its price."""
    return [describe(m, duration, resolution, gpu_usd_per_hour, gpu_seconds, audio)
            for m in load_catalog().models if kind is None or m.kind == kind]


@router.get("/{model_id}", response_model=ModelOut, responses={404: {"description": "Unknown model"}})
def get_model(model_id: str = Path(max_length=100), duration: float | None = Duration,
              resolution: str | None = Resolution, gpu_usd_per_hour: float | None = GpuRate,
              gpu_seconds: float | None = GpuSeconds, audio: bool = Audio) -> ModelOut:
    try:
        model = load_catalog().get(model_id)
    except SpecError as exc:
        raise ApiError(404, exc.message, "model_id") from None
    return describe(model, duration, resolution, gpu_usd_per_hour, gpu_seconds, audio)
