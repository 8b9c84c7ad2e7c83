"""Plain data passed between flows, tasks and providers (no Prefect, no SQL)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from reelflow.core.money import Usd

Backend = Literal["local", "fal", "comfyui", "swarmui"]
GpuBackend = Literal["comfyui", "swarmui"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
GPU_BACKENDS: tuple[GpuBackend, ...] = get_args(GpuBackend)
Via = Literal["auto", "deployment", "local"]
"""Where a run executes: ``local`` here, ``deployment`` on a worker, ``auto`` on a worker when one is online."""
GPU_URL_FIELD: dict[GpuBackend, str] = {"comfyui": "comfyui_url", "swarmui": "swarmui_url"}
"""The GpuEndpoint block field holding each GPU backend's URL."""


class VideoParams(BaseModel):
    """Resolved generation settings for one video job: every value final, checked against the catalog."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    negative_prompt: str | None = None
    duration_s: float
    frames: int | None = None
    fps: int | None = None
    width: int | None = None
    height: int | None = None
    resolution: str | None = None
    seed: int
    audio: bool = False


class ImageParams(BaseModel):
    """Resolved settings for one text-to-image job."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    width: int
    height: int
    seed: int


class MediaRef(BaseModel):
    """Where a piece of media can be read from: a local file or a URL (provider CDN, ComfyUI /view)."""

    model_config = ConfigDict(frozen=True)

    path: str | None = None
    url: str | None = None
    content_type: str
    filename: str | None = None
    headers: dict[str, str] | None = Field(default=None, repr=False, exclude=True,
                                           description="Auth headers for the URL; never printed or serialised.")

    def describe(self) -> str:
        return self.path or self.url or "<nothing>"


class ProviderOutput(BaseModel):
    """What a provider produced, before it is copied to durable storage."""

    model_config = ConfigDict(frozen=True)

    media: MediaRef
    role: str = "video"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames: int | None = None
    duration_s: float | None = None
    provider_job_id: str | None = None
    cost_usd: Usd | None = None
    scratch: bool = False  # a working file that may be deleted once stored
    text: str | None = None  # what a language model answered (role "text"; ``media`` then has no location)


class ObjectFacts(BaseModel):
    """What a stored object is, wherever it lives: its key, content hash, size and type."""

    key: str
    sha256: str
    bytes: int
    content_type: str


class MediaFacts(BaseModel):
    """What a stored image or video shows, as far as it is known."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames: int | None = None
    duration_s: float | None = None


class StoredObject(ObjectFacts):
    """One object in durable storage (local folder or R2), and where to read it."""

    model_config = ConfigDict(frozen=True)

    path: str | None = None
    url: str | None = None
