"""Whether a catalog model can run here, and if not, exactly what is missing. No network calls."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from reelflow.core.catalog import ModelEntry, load_catalog
from reelflow.core.domain import GPU_BACKENDS, Backend
from reelflow.core.spec import PipelineSpec
from reelflow.errors import ModelUnavailableError

GPU_FILES_UNCHECKED = "model files on the GPU not checked here: `reelflow gpu check` lists any missing"


class Availability(BaseModel):
    """``available`` is False when something is known to be missing; ``unchecked`` names what this
    network-free look could not verify (a GPU's installed model files)."""

    available: bool
    missing: list[str] = []
    unchecked: list[str] = []


def _local() -> list[str]:
    return []


def _fal() -> list[str]:
    from reelflow.providers.fal.translate import credentials_missing

    missing = credentials_missing()
    return [missing] if missing else []


def _gpu(backend: str) -> Callable[[], list[str]]:
    def check() -> list[str]:
        from reelflow.core.gpu_mirror import missing_for

        return missing_for(backend)

    return check


CHECKS: dict[Backend, Callable[[], list[str]]] = {"local": _local, "fal": _fal,
                                                  **{backend: _gpu(backend) for backend in GPU_BACKENDS}}


def availability(model: ModelEntry) -> Availability:
    missing = CHECKS[model.backend]()
    unchecked = [GPU_FILES_UNCHECKED] if model.backend in GPU_BACKENDS and not missing else []
    return Availability(available=not missing, missing=missing, unchecked=unchecked)


def require_available(model: ModelEntry) -> None:
    found = availability(model)
    if not found.available:
        raise ModelUnavailableError(model.id, found.missing)


def require_runnable(spec: PipelineSpec) -> ModelEntry:
    """The spec's video model, once it and the image model it generates its input with can run here;
    ``ModelUnavailableError`` naming what is missing otherwise. Checked when a run is prepared and resumed."""
    catalog = load_catalog()
    model = catalog.get(spec.model, kind=("i2v", "t2v"))
    require_available(model)
    if spec.image_prompt is not None:
        require_available(catalog.get(spec.image_model, kind="t2i"))
    return model
