"""The catalog's types (models, inputs, prices) and the built-in entries from ``catalog.toml``."""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reelflow.core.domain import Backend
from reelflow.errors import SpecError

SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
"""``WIDTHxHEIGHT``: the one spelling of an exact size."""


def parse_size(text: str) -> tuple[int, int] | None:
    """``(width, height)`` of a ``WIDTHxHEIGHT`` text, or None for anything else (a preset such as ``720p``)."""
    found = SIZE.match(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


Kind = Literal["i2v", "t2v", "t2i", "i2i", "llm"]
"""What a model makes from what: image/text to video, text/image to image, text to text (a language model)."""
KINDS: tuple[str, ...] = ("i2v", "t2v", "t2i", "i2i", "llm")
VIDEO_KINDS: tuple[str, ...] = ("i2v", "t2v")
KIND_NAMES: dict[tuple[str, ...], str] = {
    ("i2v",): "video model", VIDEO_KINDS: "video model", ("t2v",): "text-to-video model", ("t2i",): "image model",
    ("i2i",): "image edit model", ("llm",): "language model"}


class ModelInputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Literal["required", "optional", "unused"] = "optional"
    prompt_max_chars: int | None = None
    negative_prompt: bool = False
    negative_prompt_max_chars: int | None = None
    durations: list[float] | None = Field(default=None, description="Allowed durations (s), if discrete.")
    duration_range: tuple[float, float] | None = None
    default_duration: float | None = None
    fps_range: tuple[int, int] | None = None
    default_fps: int | None = None
    frames_rule: Literal["4n+1"] | None = None
    resolutions: list[str] | None = Field(default=None, description="Allowed resolution labels, if fixed.")
    width_range: tuple[int, int] | None = None
    height_range: tuple[int, int] | None = None
    size_multiple: int = 1
    default_resolution: str | None = None
    seed: bool = False


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: Literal["free", "second", "clip", "megapixel", "gpu_hour"]
    usd: float | None = None
    by_resolution: dict[str, float] | None = None
    base_seconds: float | None = None
    base_usd: float | None = None
    extra_usd_per_second: float | None = None

    def estimate(self, *, seconds: float | None = None, megapixels: float | None = None,
                 resolution: str | None = None, gpu_usd_per_hour: float | None = None,
                 gpu_seconds: float | None = None) -> float | None:
        """Cost in USD for one job, or None when it cannot be known in advance."""
        if self.unit == "free":
            return 0.0
        if self.unit == "second" and seconds is not None:
            rate = self.by_resolution.get(resolution or "", None) if self.by_resolution else self.usd
            return None if rate is None else round(rate * seconds, 6)
        if self.unit == "clip" and seconds is not None and self.base_usd is not None:
            extra = max(0.0, seconds - (self.base_seconds or 0.0)) * (self.extra_usd_per_second or 0.0)
            return round(self.base_usd + extra, 6)
        if self.unit == "megapixel" and megapixels is not None and self.usd is not None:
            return round(self.usd * max(1, -(-megapixels // 1)), 6)
        if self.unit == "gpu_hour" and gpu_usd_per_hour is not None and gpu_seconds is not None:
            return round(gpu_usd_per_hour * gpu_seconds / 3600.0, 6)
        return None

    def text(self) -> str:
        """The price as a person reads it, in US dollars: ``$0.05 per second``, ``free``, ``GPU time × ...``."""
        if self.unit == "free":
            return "free"
        if self.unit == "gpu_hour":
            return "GPU time × your $/hour"
        if self.unit == "second" and self.by_resolution:
            first, *rest = [f"${usd:g} at {res}" for res, usd in self.by_resolution.items()]
            return ", ".join([first.replace(" at ", " per second at ", 1), *rest])
        if self.unit == "clip" and self.base_usd is not None:
            return (f"${self.base_usd:g} per {self.base_seconds or 0:g} s clip, "
                    f"+${self.extra_usd_per_second or 0:g} per extra second")
        if self.usd is None:
            return "price unknown"
        return f"${self.usd:g} per {'megapixel' if self.unit == 'megapixel' else 'second'}"


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    kind: Kind
    backend: Backend
    endpoint: str
    ai: bool
    description: str
    speed_hint: str
    inputs: ModelInputs
    price: Price

    def priced_seconds(self, duration: float | None) -> float | None:
        """The duration the model would really make: the shortest offered one that is long enough, or the
        range's nearest end (so a 2 s request is priced as the 5 s clip a 5-or-10 s model makes at least)."""
        inputs = self.inputs
        if duration is None:
            return inputs.default_duration
        if inputs.durations:
            return next((d for d in sorted(inputs.durations) if d >= duration), max(inputs.durations))
        if inputs.duration_range:
            low, high = inputs.duration_range
            return min(max(duration, low), high)
        return duration

    def estimate_usd(self, *, duration: float | None = None, resolution: str | None = None,
                     gpu_usd_per_hour: float | None = None, gpu_seconds: float | None = None) -> float | None:
        """One job's price for these inputs (the model's defaults where None), or None when unknown."""
        label = resolution or self.inputs.default_resolution
        size = parse_size(resolution or self.inputs.default_resolution or "")
        return self.price.estimate(seconds=self.priced_seconds(duration),
                                   megapixels=size[0] * size[1] / 1_000_000 if size else None, resolution=label,
                                   gpu_usd_per_hour=gpu_usd_per_hour, gpu_seconds=gpu_seconds)


class Catalog(BaseModel):
    models: list[ModelEntry]

    def get(self, model_id: str, *, kind: str | tuple[str, ...] | None = None) -> ModelEntry:
        """The model ``model_id``, of ``kind`` (one kind or several) when given."""
        kinds = (kind,) if isinstance(kind, str) else kind
        for entry in self.models:
            if entry.id == model_id and (kinds is None or entry.kind in kinds):
                return entry
        allowed = ", ".join(m.id for m in self.models if kinds is None or m.kind in kinds)
        what = KIND_NAMES.get(kinds, "model") if kinds else "model"
        raise SpecError("model", f"unknown {what} '{model_id}'; choose one of: {allowed}")


@lru_cache(maxsize=1)
def builtin_catalog() -> Catalog:
    text = resources.files("reelflow.core.catalog").joinpath("catalog.toml").read_text(encoding="utf-8")
    return Catalog.model_validate(tomllib.loads(text))
