"""``PipelineSpec``: what a caller asks for, checked strictly and against the catalog."""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reelflow.core.catalog import VIDEO_KINDS, ModelEntry, load_catalog
from reelflow.core.catalog.models import parse_size
from reelflow.core.domain import ImageParams, VideoParams
from reelflow.errors import SpecError

MAX_SEED = 2**32 - 1
_PRESET = re.compile(r"^(\d{3,4})p$")
_ANY_SIZE = re.compile(r"^(\d{1,9})x(\d{1,9})$")


class PipelineSpec(BaseModel):
    """One video: an input image (or a prompt to make one; none for a text-to-video model), an optional last
    frame, a video model and its settings."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    model: str = Field(description="Video model id from the catalog (`reelflow models`).")
    image: str | None = Field(default=None, description="Input image: a local path or an http(s) URL.")
    image_prompt: str | None = Field(default=None, description="Prompt to generate the input image instead.")
    end_image: str | None = Field(default=None, description=(
        "Last frame (first-last-frame video): a local path or an http(s) URL, for models that take one."))
    audio: bool = Field(default=False, description="Add generated audio, on models that can (it may cost more).")
    image_model: str = Field(default="flux-schnell", description="Text-to-image model for image_prompt.")
    prompt: str = Field(default="", max_length=20000, description="What should happen in the video.")
    negative_prompt: str | None = Field(default=None, max_length=5000)
    duration: float | None = Field(default=None, allow_inf_nan=False, description="Seconds of video (or give frames).")
    frames: int | None = Field(default=None, description="Number of frames (or give duration).")
    fps: int | None = Field(default=None, description="Frames per second, where the model lets you choose.")
    resolution: str | None = Field(default=None, description="'480p'/'720p'/'1080p' or 'WIDTHxHEIGHT'.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description=(
        "Seed for repeatable results. Left out, a fresh random seed is drawn when the run is prepared and "
        "recorded in the run's spec, so two submissions without a seed are two renders."))
    storage: Literal["auto", "local", "r2"] = "auto"

    @model_validator(mode="after")
    def _one_image_source(self) -> PipelineSpec:
        if self.image is not None and self.image_prompt is not None:
            raise ValueError("image: give either image or image_prompt, not both")
        if self.duration is not None and self.frames is not None:
            raise ValueError("duration: give duration or frames, not both")
        return self

    def canonical_json(self) -> str:
        data = self.model_dump(mode="json")
        for name, unset in (("end_image", None), ("audio", False)):  # left out when unused: older keys still match
            if data[name] == unset:
                del data[name]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def idempotency_key(self, input_sha256: str | None, end_image_sha256: str | None = None) -> str:
        """Same spec + same input bytes (start and end image) -> same key; a finished run with it is reused."""
        digest = hashlib.sha256(self.canonical_json().encode())
        digest.update(b"\0" + (input_sha256 or "").encode())
        if end_image_sha256:
            digest.update(b"\0end\0" + end_image_sha256.encode())
        return digest.hexdigest()


def parse_spec(data: dict[str, Any] | PipelineSpec) -> PipelineSpec:
    """Validate raw input into a spec, turning pydantic's errors into one ``SpecError`` naming the field."""
    if isinstance(data, PipelineSpec):
        spec = data
    else:
        try:
            spec = PipelineSpec.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            message = first["msg"].removeprefix("Value error, ")
            field = ".".join(str(p) for p in first["loc"])
            if not field:
                field, _, message = message.partition(": ")
            raise SpecError(field, message) from None
    check_spec(spec)
    return with_seed(spec)


def with_seed(spec: PipelineSpec) -> PipelineSpec:
    """``spec`` with a fresh random seed when it has none and its video model takes one."""
    if spec.seed is not None or not load_catalog().get(spec.model, kind=VIDEO_KINDS).inputs.seed:
        return spec
    return spec.model_copy(update={"seed": random.SystemRandom().randrange(MAX_SEED + 1)})


def check_spec(spec: PipelineSpec) -> None:
    """Check a spec against its models' accepted inputs, before any image is read or job queued."""
    catalog = load_catalog()
    model = catalog.get(spec.model, kind=VIDEO_KINDS)
    _check_inputs(spec, model)
    if spec.image_prompt is not None:
        try:
            image_model = catalog.get(spec.image_model, kind="t2i")
        except SpecError as exc:
            raise SpecError("image_model", exc.message) from None
        _check_text("image_prompt", spec.image_prompt, image_model.inputs.prompt_max_chars)
    _check_prompt(spec, model)
    _check_timing(spec, model)
    if spec.resolution is not None:
        _check_resolution(spec.resolution, model)
    if spec.seed is not None and not model.inputs.seed:
        raise SpecError("seed", f"model '{model.id}' does not take a seed; leave it out")


def _takers(what: str) -> str:
    found = [m.id for m in load_catalog().models if m.kind in VIDEO_KINDS and (
        m.inputs.end_image != "unused" if what == "end_image" else m.inputs.audio)]
    return ", ".join(found) or "none"


def _check_inputs(spec: PipelineSpec, model: ModelEntry) -> None:
    """The images a model takes: a start image (or its prompt) for image-to-video, none for text-to-video, and
    an end image where the model takes one; and audio only where the model can add it."""
    if model.kind == "t2v":
        if spec.image is not None or spec.image_prompt is not None:
            field = "image" if spec.image is not None else "image_prompt"
            raise SpecError(field, f"model '{model.id}' is text-to-video: it takes no start image; leave {field} out "
                            "or choose an image-to-video model")
    elif spec.image is None and not (spec.image_prompt or "").strip():
        raise SpecError("image", "an input is needed: image (path or URL) or image_prompt")
    if spec.end_image is not None and model.inputs.end_image == "unused":
        raise SpecError("end_image", f"model '{model.id}' takes no end image; models that take one: "
                        f"{_takers('end_image')}")
    if spec.end_image is None and model.inputs.end_image == "required":
        raise SpecError("end_image", f"model '{model.id}' needs an end image (the last frame); give end_image")
    if spec.audio and not model.inputs.audio:
        raise SpecError("audio", f"model '{model.id}' cannot add audio; models that can: {_takers('audio')}")


def _check_text(field: str, text: str, max_chars: int | None) -> None:
    if not text.strip():
        raise SpecError(field, "must not be empty")
    if max_chars is not None and len(text) > max_chars:
        raise SpecError(field, f"is {len(text)} characters; at most {max_chars} allowed")


def _check_prompt(spec: PipelineSpec, model: ModelEntry) -> None:
    rule = model.inputs.prompt
    if rule == "required":
        _check_text("prompt", spec.prompt, model.inputs.prompt_max_chars)
    elif model.inputs.prompt_max_chars and len(spec.prompt) > model.inputs.prompt_max_chars:
        raise SpecError("prompt", f"at most {model.inputs.prompt_max_chars} characters allowed")
    if spec.negative_prompt:
        if not model.inputs.negative_prompt:
            raise SpecError("negative_prompt", f"model '{model.id}' does not take a negative prompt")
        limit = model.inputs.negative_prompt_max_chars
        if limit is not None and len(spec.negative_prompt) > limit:
            raise SpecError("negative_prompt", f"at most {limit} characters allowed")


def _check_timing(spec: PipelineSpec, model: ModelEntry) -> None:
    inputs = model.inputs
    if spec.fps is not None:
        if inputs.fps_range is None:
            raise SpecError("fps", f"model '{model.id}' has a fixed frame rate; leave fps out")
        low, high = inputs.fps_range
        if not low <= spec.fps <= high:
            raise SpecError("fps", f"{spec.fps} is out of range; allowed {low}-{high}")
    if spec.frames is not None:
        if inputs.fps_range is None:
            raise SpecError("frames", f"model '{model.id}' takes a duration, not a frame count")
        longest = inputs.duration_range[1] if inputs.duration_range else max(inputs.durations or [3600.0])
        most = max(1, int(longest * (spec.fps or inputs.default_fps or 24)))
        if not 1 <= spec.frames <= most:
            shown = spec.frames if spec.frames < 10**9 else "more than a billion"
            raise SpecError("frames", f"{shown} is out of range; allowed 1-{most} at this frame rate")
        if inputs.frames_rule == "4n+1" and spec.frames % 4 != 1:
            raise SpecError("frames", f"{spec.frames} is not allowed; this model needs 4n+1 frames (49, 81, ...)")
    duration = _duration_of(spec, model)
    if inputs.durations is not None:
        if duration not in inputs.durations:
            allowed = ", ".join(f"{d:g}" for d in inputs.durations)
            raise SpecError("duration", f"{duration:g} s is not offered; choose one of: {allowed}")
    elif inputs.duration_range is not None:
        low, high = inputs.duration_range
        if not low <= duration <= high:
            field = "frames" if spec.frames is not None else "duration"
            raise SpecError(field, f"{duration:g} s is out of range; allowed {low:g}-{high:g} s")


def _duration_of(spec: PipelineSpec, model: ModelEntry) -> float:
    if spec.frames is not None:
        return spec.frames / (spec.fps or model.inputs.default_fps or 24)
    if spec.duration is not None:
        return spec.duration
    return model.inputs.default_duration or 5.0


def _check_resolution(resolution: str, model: ModelEntry) -> None:
    inputs = model.inputs
    if inputs.resolutions is not None:
        if resolution not in inputs.resolutions:
            raise SpecError("resolution", f"'{resolution}' is not offered; choose one of: "
                            + ", ".join(inputs.resolutions))
        return
    if inputs.width_range is None or inputs.height_range is None:
        raise SpecError("resolution", f"model '{model.id}' has a fixed resolution; leave it out")
    (wl, wh), (hl, hh) = inputs.width_range, inputs.height_range
    allowed = f"width {wl}-{wh} and height {hl}-{hh}, multiples of {inputs.size_multiple}"
    preset = _PRESET.match(resolution)
    size = _ANY_SIZE.match(resolution)
    if preset:
        short = int(preset.group(1))
        width, height = _round_to(short * 16 / 9, inputs.size_multiple), short
    elif size:
        width, height = int(size.group(1)), int(size.group(2))
    else:
        raise SpecError("resolution", f"'{resolution}' is not a resolution; use e.g. 720p or 1280x720 ({allowed})")
    shown = resolution if size else f"{resolution} ({width}x{height})"
    if not (wl <= width <= wh and hl <= height <= hh):
        raise SpecError("resolution", f"{shown} is out of range; allowed {allowed}")
    if width % inputs.size_multiple or height % inputs.size_multiple:
        raise SpecError("resolution", f"{shown} is not allowed; allowed {allowed}")


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def frame_size(model: ModelEntry, resolution: str | None, image_size: tuple[int, int]) -> tuple[int, int] | None:
    """Output size in pixels: an explicit WxH, or a preset's short side in the image's orientation."""
    inputs = model.inputs
    if inputs.width_range is None or inputs.height_range is None:
        return None
    label = resolution or inputs.default_resolution or "480p"
    size = parse_size(label)
    if size:
        return size
    short = int(label.removesuffix("p"))
    long = _round_to(short * 16 / 9, inputs.size_multiple)
    short = _round_to(short, inputs.size_multiple)
    width, height = (long, short) if image_size[0] >= image_size[1] else (short, long)
    (wl, wh), (hl, hh) = inputs.width_range, inputs.height_range
    return min(max(width, wl), wh), min(max(height, hl), hh)


def video_params(spec: PipelineSpec, model: ModelEntry, image_size: tuple[int, int], seed: int) -> VideoParams:
    """Final settings for the video job: duration, frames and fps agreed, size chosen, seed fixed."""
    inputs = model.inputs
    fps = (spec.fps or inputs.default_fps) if inputs.fps_range is not None else None
    duration = _duration_of(spec, model)
    frames = None
    if fps is not None:
        frames = spec.frames if spec.frames is not None else max(1, round(duration * fps))
        if inputs.frames_rule == "4n+1" and frames % 4 != 1:
            frames = 4 * round((frames - 1) / 4) + 1
        duration = frames / fps
    size = frame_size(model, spec.resolution, image_size)
    label = spec.resolution or inputs.default_resolution
    return VideoParams(
        prompt=spec.prompt, negative_prompt=spec.negative_prompt, duration_s=round(duration, 6),
        frames=frames, fps=fps, width=size[0] if size else None, height=size[1] if size else None,
        resolution=label, seed=seed, audio=spec.audio,
    )


def image_params(spec: PipelineSpec, model: ModelEntry, seed: int) -> ImageParams:
    size = frame_size(model, None, (16, 9)) or (1024, 768)
    return ImageParams(prompt=spec.image_prompt or "", width=size[0], height=size[1], seed=seed)
