"""The catalog's types (models, inputs, prices) and the built-in entries from ``catalog.toml``."""

from __future__ import annotations

import re
import tomllib
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reelflow.core.domain import Backend
from reelflow.core.money import usd
from reelflow.errors import SpecError

SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
"""``WIDTHxHEIGHT``: the one spelling of an exact size."""


def parse_size(text: str) -> tuple[int, int] | None:
    """``(width, height)`` of a ``WIDTHxHEIGHT`` text, or None for anything else (a preset such as ``720p``)."""
    found = SIZE.match(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


Kind = Literal["i2v", "t2v", "t2i", "i2i", "llm", "v2v", "v2i"]
"""What a model makes from what: image/text to video, text/image to image, text to text (a language model);
video to video or to image (registered ComfyUI workflows only: interpolators, frame pickers)."""
KINDS: tuple[str, ...] = ("i2v", "t2v", "t2i", "i2i", "llm", "v2v", "v2i")
VIDEO_KINDS: tuple[str, ...] = ("i2v", "t2v")
KIND_NAMES: dict[tuple[str, ...], str] = {
    ("i2v",): "video model", VIDEO_KINDS: "video model", ("t2v",): "text-to-video model", ("t2i",): "image model",
    ("i2i",): "image edit model", ("llm",): "language model", ("v2v",): "video-to-video workflow",
    ("v2i",): "video-to-image workflow"}
Medium = Literal["text", "image", "video"]
KIND_MEDIA: dict[str, tuple[Medium, Medium]] = {
    "i2v": ("image", "video"), "t2v": ("text", "video"), "t2i": ("text", "image"), "i2i": ("image", "image"),
    "llm": ("text", "text"), "v2v": ("video", "video"), "v2i": ("video", "image")}
"""Kind -> (what the model takes, what it makes)."""


def kind_of(takes: Medium, makes: Medium) -> Kind:
    """The kind of a model that makes ``makes`` from ``takes``."""
    return next(k for k, media in KIND_MEDIA.items() if media == (takes, makes))  # type: ignore[return-value]


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
    end_image: Literal["unused", "optional", "required"] = Field(
        default="unused", description="Whether the model takes a last frame (first-last-frame video).")
    audio: bool = Field(default=False, description="Can add generated audio (off unless asked; may cost more).")


class FalFields(BaseModel):
    """How a fal endpoint names our inputs (from its OpenAPI input schema); None: the endpoint has no such input.

    ``reelflow.providers.fal.arguments`` builds every fal request from this, so a model registered with
    ``reelflow models add`` needs no code.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_field: str = "prompt"
    image_field: str | None = "image_url"
    image_list: bool = Field(default=False, description="The image field takes a list of URLs (image_urls).")
    end_image_field: str | None = None
    duration_field: str | None = "duration"
    duration_format: str = Field(default="{}", description="How a duration is written: '{}' -> \"5\", '{}s' -> \"5s\".")
    resolution_field: str | None = "resolution"
    negative_prompt_field: str | None = "negative_prompt"
    seed_field: str | None = "seed"
    audio_field: str | None = None
    image_size_field: str | None = None
    output_field: str = Field(default="video.url", description="Where the result's URL is: video.url, images.url.")
    fixed: dict[str, Any] = Field(default_factory=dict, description="Inputs always sent as given.")

    @field_validator("image_field", "end_image_field", "duration_field", "resolution_field", "negative_prompt_field",
                     "seed_field", "audio_field", "image_size_field", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value  # TOML has no null: "" says the endpoint has no such input

    def duration_text(self, seconds: float) -> str:
        return self.duration_format.format(int(seconds) if float(seconds).is_integer() else seconds)


def _usd(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: Literal["free", "second", "clip", "megapixel", "image", "video", "gpu_hour", "token"]
    usd: float | None = None
    by_resolution: dict[str, float] | None = None
    base_seconds: float | None = None
    base_usd: float | None = None
    extra_usd_per_second: float | None = None
    audio_usd: float | None = Field(default=None, description="The per-second rate with audio on.")
    audio_by_resolution: dict[str, float] | None = None
    source: str | None = Field(default=None, description="Where the price was read, and when.")
    confirmed: bool = Field(default=True, description="False: not confirmed from fal's own pages.")

    def _rate(self, resolution: str | None, audio: bool) -> Decimal | None:
        """The rate at ``resolution`` from its table, else the flat rate (None: unknown)."""
        table = (self.audio_by_resolution if audio else self.by_resolution) or {}
        flat = self.audio_usd if audio else self.usd
        return _usd(table.get(resolution or "", flat))

    def estimate(self, *, seconds: float | None = None, megapixels: float | None = None,
                 resolution: str | None = None, gpu_usd_per_hour: float | None = None,
                 gpu_seconds: float | None = None, audio: bool = False) -> Decimal | None:
        """Cost in USD for one job, or None when it cannot be known in advance (audio's price included)."""
        cost = self._estimate(seconds, megapixels, resolution, gpu_usd_per_hour, gpu_seconds, audio)
        return usd(cost)

    def _estimate(self, seconds: float | None, megapixels: float | None, resolution: str | None,
                  gpu_usd_per_hour: float | None, gpu_seconds: float | None, audio: bool) -> Decimal | None:
        if self.unit == "free":
            return Decimal(0)
        if audio and self.unit not in ("second",):
            return None
        if self.unit == "second" and seconds is not None:
            rate = self._rate(resolution, audio)
            return None if rate is None else rate * Decimal(str(seconds))
        if self.unit == "clip" and seconds is not None and self.base_usd is not None:
            extra = max(Decimal(0), Decimal(str(seconds)) - (_usd(self.base_seconds) or Decimal(0)))
            return Decimal(str(self.base_usd)) + extra * (_usd(self.extra_usd_per_second) or Decimal(0))
        if self.unit == "megapixel" and megapixels is not None and self.usd is not None:
            units = max(1, int((Decimal(str(megapixels))).to_integral_value(rounding=ROUND_CEILING)))
            return Decimal(str(self.usd)) * units
        if self.unit in ("image", "video"):
            return self._rate(resolution, False)
        if self.unit == "gpu_hour" and gpu_usd_per_hour is not None and gpu_seconds is not None:
            return Decimal(str(gpu_usd_per_hour)) * Decimal(str(gpu_seconds)) / Decimal(3600)
        return None

    def text(self) -> str:
        """The price as a person reads it, in US dollars: ``$0.05 per second``, ``free``, ``GPU time × ...``."""
        text = self._text(self.usd, self.by_resolution)
        if self.unit == "second" and (self.audio_usd is not None or self.audio_by_resolution):
            text += f" (with audio: {self._text(self.audio_usd, self.audio_by_resolution)})"
        return text

    def _text(self, flat: float | None, table: dict[str, float] | None) -> str:
        if self.unit == "free":
            return "free"
        if self.unit == "gpu_hour":
            return "GPU time × your $/hour"
        if self.unit == "token":
            return "$ per token (unknown in advance; the job reports it)"
        if self.unit == "clip" and self.base_usd is not None:
            return (f"${self.base_usd:g} per {self.base_seconds or 0:g} s clip, "
                    f"+${self.extra_usd_per_second or 0:g} per extra second")
        per = {"megapixel": "megapixel", "image": "image", "video": "video"}.get(self.unit, "second")
        rates = [f"${usd:g} at {res}" for res, usd in (table or {}).items()]
        if flat is not None:
            return f"${flat:g} per {per}" + (f" ({', '.join(rates)})" if rates else "")
        if rates:
            return ", ".join([rates[0].replace(" at ", f" per {per} at ", 1), *rates[1:]])
        return "price unknown"


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
    fal: FalFields | None = Field(default=None, description="fal field names (fal models only).")
    source: str | None = Field(default=None, description="Where the input schema was read, and when.")

    @property
    def input_kind(self) -> Medium:
        """What the model takes: text, an image or a video."""
        return KIND_MEDIA[self.kind][0]

    @property
    def output_kind(self) -> Medium:
        """What the model makes: text, an image or a video."""
        return KIND_MEDIA[self.kind][1]

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
                     gpu_usd_per_hour: float | None = None, gpu_seconds: float | None = None,
                     audio: bool = False) -> Decimal | None:
        """One job's price for these inputs (the model's defaults where None), or None when unknown."""
        label = resolution or self.inputs.default_resolution
        size = parse_size(resolution or self.inputs.default_resolution or "")
        return self.price.estimate(seconds=self.priced_seconds(duration),
                                   megapixels=size[0] * size[1] / 1_000_000 if size else None, resolution=label,
                                   gpu_usd_per_hour=gpu_usd_per_hour, gpu_seconds=gpu_seconds, audio=audio)


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
