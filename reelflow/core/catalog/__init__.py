"""The model catalog: the built-in models (``catalog.toml``) plus registered ComfyUI workflows and fal endpoints."""

from __future__ import annotations

from reelflow.core.catalog.models import (
    KINDS,
    VIDEO_KINDS,
    Backend,
    Catalog,
    Kind,
    ModelEntry,
    ModelInputs,
    Price,
    builtin_catalog,
)
from reelflow.core.catalog.registered import registered_fal_models
from reelflow.core.catalog.workflows import registered_models

__all__ = ["KINDS", "VIDEO_KINDS", "Backend", "Catalog", "Kind", "ModelEntry", "ModelInputs", "Price",
           "builtin_catalog", "load_catalog"]


def load_catalog() -> Catalog:
    """The built-in models plus ComfyUI workflows registered with ``reelflow workflows add`` (``comfyui:<name>``)
    and fal endpoints registered with ``reelflow models add``."""
    extra = [*registered_models(), *registered_fal_models()]
    base = builtin_catalog()
    return Catalog(models=[*base.models, *extra]) if extra else base
