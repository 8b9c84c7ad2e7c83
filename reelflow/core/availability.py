"""Whether a catalog model can run here, and if not, exactly what is missing. No network calls."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from reelflow.core.catalog import ModelEntry
from reelflow.errors import ModelUnavailableError

BUILT_BACKENDS = {"local", "fal", "comfyui", "swarmui"}


class Availability(BaseModel):
    available: bool
    missing: list[str] = []


def _local() -> list[str]:
    return []


def _fal() -> list[str]:
    from reelflow.providers.fal.translate import credentials_missing

    missing = credentials_missing()
    return [missing] if missing else []


def _gpu(backend: str) -> Callable[[], list[str]]:
    def check() -> list[str]:
        from reelflow.gpu.mirror import missing_for

        return missing_for(backend)

    return check


CHECKS: dict[str, Callable[[], list[str]]] = {"local": _local, "fal": _fal, "comfyui": _gpu("comfyui"),
                                              "swarmui": _gpu("swarmui")}


def availability(model: ModelEntry) -> Availability:
    if model.backend not in BUILT_BACKENDS:
        return Availability(available=False,
                            missing=[f"the '{model.backend}' backend is not built into this version of reelflow"])
    missing = CHECKS.get(model.backend, _local)()
    return Availability(available=not missing, missing=missing)


def require_available(model: ModelEntry) -> None:
    found = availability(model)
    if not found.available:
        raise ModelUnavailableError(model.id, found.missing)
