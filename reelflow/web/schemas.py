"""Request and response bodies of the REST API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from reelflow.core.domain import MediaFacts, ObjectFacts
from reelflow.core.money import Usd
from reelflow.core.spec import MAX_SEED
from reelflow.providers.vastai import InstanceFacts
from reelflow.store.views import EventFacts, StepFacts

MAX_FRAMES = 1_000_000  # far beyond any model's range; keeps numbers the spec's arithmetic can hold
MAX_FPS = 10_000
MAX_SECONDS = 86_400.0
RunStatus = Literal["queued", "running", "waiting", "completed", "failed", "cancelled"]


def _utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; the store writes UTC, so say so (RFC 3339)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]


class SpecFields(BaseModel):
    """The settings of a pipeline (see ``reelflow.core.spec.PipelineSpec``); all optional here."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = Field(default=None, max_length=100, description="Video model id (GET /api/models).")
    image: str | None = Field(default=None, max_length=4096,
                              description="An http(s) URL, or 'upload:<id>' from POST /api/uploads.")
    image_prompt: str | None = Field(default=None, max_length=20000,
                                     description="Generate the start image from this prompt instead.")
    image_model: str | None = Field(default=None, max_length=100, description="Text-to-image model id.")
    end_image: str | None = Field(default=None, max_length=4096, description=(
        "Last frame, for models that take one (first-last-frame): an http(s) URL or 'upload:<id>'."))
    audio: bool | None = Field(default=None, description="Add generated audio, on models that can (priced higher).")
    prompt: str | None = Field(default=None, max_length=20000)
    negative_prompt: str | None = Field(default=None, max_length=5000)
    duration: float | None = Field(default=None, le=MAX_SECONDS, allow_inf_nan=False,
                                   description="Seconds of video (or give frames).")
    frames: int | None = Field(default=None, le=MAX_FRAMES, description="Number of frames (or give duration).")
    fps: int | None = Field(default=None, le=MAX_FPS)
    resolution: str | None = Field(default=None, max_length=20, description="480p, 720p, 1080p or WIDTHxHEIGHT.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    storage: Literal["auto", "local", "r2"] | None = None


class RunCreate(SpecFields):
    """A new run: the spec fields, or a saved pipeline's spec with some fields overridden."""

    pipeline_id: str | None = Field(default=None, max_length=64, description="Start from this saved pipeline.")
    force: bool = Field(default=False, description="Render again even if an identical run finished.")


class CompatVideoRequest(BaseModel):
    """Body of the original system's ``/api/vastai/generate-video`` and ``/api/swarm/generate-video``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image: str | None = Field(default=None, max_length=4096, description="http(s) URL or 'upload:<id>'.")
    image_url: str | None = Field(default=None, max_length=4096, description="Same as image (older name).")
    prompt: str = Field(max_length=20000)
    negative_prompt: str | None = Field(default=None, max_length=5000)
    duration: float | None = Field(default=None, le=MAX_SECONDS, allow_inf_nan=False)
    frames: int | None = Field(default=None, le=MAX_FRAMES)
    fps: int | None = Field(default=None, le=MAX_FPS)
    resolution: str | None = Field(default=None, max_length=20)
    width: int | None = Field(default=None, ge=1, le=8192)
    height: int | None = Field(default=None, ge=1, le=8192)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    force: bool = False


class OutputOut(ObjectFacts, MediaFacts):
    role: str
    url: str | None = Field(description="Where the browser can fetch it: /api/media/<key> or a CDN URL.")


class StepOut(StepFacts):
    started_at: UtcDateTime
    finished_at: UtcDateTime | None = None


class RunOut(BaseModel):
    run_id: str
    status: str
    cached: bool
    model: str
    backend: str
    spec: dict[str, Any]
    progress: float
    cost_usd: Usd | None = None
    error: str | None = None
    video_url: str | None = None
    poster_url: str | None = None
    input_url: str | None = None
    prefect_flow_run_id: str | None = None
    prefect_url: str | None = None
    batch_id: str | None = None
    created_at: UtcDateTime
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    outputs: list[OutputOut]
    steps: list[StepOut]
    kind: Literal["video", "pipeline"] = "video"
    pipeline_id: str | None = Field(default=None, description="The saved pipeline it was started from.")
    pipeline_name: str | None = None
    model_name: str | None = Field(default=None, description="The model's display name (null: not in the catalog).")
    prompt: str | None = None
    seed: int | None = Field(default=None, description="The seed the run used (a random one is drawn and recorded).")
    duration_s: float | None = Field(default=None, description="Seconds of the output video (else the spec's).")
    width: int | None = None
    height: int | None = None
    elapsed_s: float | None = Field(default=None, description="Seconds from start to finish (so far, if running).")
    input_path: str | None = Field(default=None, description=(
        "Where the server stored the input image (local storage): for `reelflow run --image` on this machine."))


class EventOut(EventFacts):
    """One run event, as sent on the SSE streams."""

    created_at: UtcDateTime


class RunPage(BaseModel):
    total: int = Field(description="How many runs match the filters (created up to as_of).")
    limit: int
    offset: int
    runs: list[RunOut]
    as_of: UtcDateTime | None = Field(default=None, description=(
        "Pass it back with the next offset: runs created later are left out, so pages neither shift nor repeat "
        "while new runs arrive."))
    next_offset: int | None = Field(default=None, description="The next page's offset; null on the last page.")


class PriceOut(BaseModel):
    unit: str
    text: str = Field(description="The price in words, e.g. '$0.10 per second at 720p'.")
    estimate_usd: Usd | None = Field(description="Estimated cost of one job with the given inputs, if known.")
    source: str | None = Field(default=None, description="Where the price was read, and when.")
    confirmed: bool = Field(default=True, description="False: the price is not confirmed from the provider's pages.")


class ModelOut(BaseModel):
    id: str
    name: str
    kind: str
    backend: str
    ai: bool
    description: str
    speed_hint: str
    inputs: dict[str, Any]
    price: PriceOut
    available: bool
    missing: list[str]
    unchecked: list[str] = []
    """What could not be checked from here (a GPU's model files): available then means "nothing known missing"."""


DefinitionField = Field(default=None, description=(
    "A pipeline definition (see `reelflow pipeline schema`): a JSON object, or its YAML/JSON text. Or send the "
    "YAML itself as the request body (Content-Type: application/yaml)."))


class PipelineIn(BaseModel):
    """A definition (a graph of steps), or the panel's one-video spec (read as a one-step pipeline)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200, description=(
        "Defaults to the definition's name."))
    definition: dict[str, Any] | str | None = DefinitionField
    spec: SpecFields | None = None


class PipelinePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    definition: dict[str, Any] | str | None = DefinitionField
    spec: SpecFields | None = None


class PipelineOut(BaseModel):
    pipeline_id: str
    name: str
    definition: dict[str, Any] = Field(description="The definition (a spec-saved pipeline: its one-step form).")
    version: int = Field(description="Bumped by every save that changes the definition.")
    saved_as: Literal["definition", "spec"]
    spec: dict[str, Any] = Field(description="The one-video spec it was saved as; empty for a definition.")
    created_at: UtcDateTime
    updated_at: UtcDateTime
    warnings: list[dict[str, Any]] = Field(default_factory=list, description=(
        "Steps whose model cannot run here yet: {step, field, message} (saved all the same)."))


class PipelinePage(BaseModel):
    total: int
    pipelines: list[PipelineOut]


class EstimateIn(BaseModel):
    """What to price: a definition, or a saved pipeline (at its latest or a given version), with inputs."""

    model_config = ConfigDict(extra="forbid", strict=True)

    definition: dict[str, Any] | str | None = DefinitionField
    pipeline_id: str | None = Field(default=None, max_length=64)
    version: int | None = Field(default=None, ge=1)
    inputs: dict[str, Any] = Field(default_factory=dict, description="Values of the pipeline's inputs.")
    gpu_usd_per_hour: float | None = Field(default=None, ge=0, le=10_000, allow_inf_nan=False)
    gpu_seconds: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False, description=(
        "GPU seconds one GPU job takes; with gpu_usd_per_hour it prices GPU steps."))


class StepEstimateOut(BaseModel):
    step: str
    kind: str
    model: str | None
    count: int = Field(description="Jobs the step makes: fan-out items, variants, extend's times.")
    usd: str | None = Field(description="Exact decimal dollars for all its jobs; null when unknown (not free).")
    note: str


class EstimateOut(BaseModel):
    pipeline: str
    steps: list[StepEstimateOut]
    total_usd: str | None = Field(description="Exact decimal dollars; null when any step's price is unknown.")
    unknown: list[str] = Field(description="The steps whose price is unknown.")


class UploadOut(BaseModel):
    upload_id: str = Field(description="The image's sha256.")
    image: str = Field(description="Put this in a run's 'image' field: 'upload:<upload_id>'.")
    url: str
    content_type: str
    bytes: int
    width: int
    height: int


class GpuConfigIn(BaseModel):
    """Fields to change; leave a field out to keep it. Secrets sent as '********' are kept as they are."""

    model_config = ConfigDict(extra="forbid", strict=True)

    gpu_provider: Literal["none", "local", "vastai"] | None = Field(default=None, description="Alias of provider.")
    provider: Literal["none", "local", "vastai"] | None = None
    comfyui_url: str | None = Field(default=None, max_length=2048)
    swarmui_url: str | None = Field(default=None, max_length=2048)
    vastai_instance_id: int | None = Field(default=None, ge=1, le=2**53)
    vastai_api_key: str | None = Field(default=None, max_length=512)
    vastai_api_url: str | None = Field(
        default=None, max_length=2048, description="Read-only here (422 if changed): the vast.ai key is sent to it; "
        "set it with `reelflow gpu set --vastai-api-url` or the Block.")
    portal_token: str | None = Field(default=None, max_length=512)
    tunnel_auth_header_name: str | None = Field(default=None, max_length=200)
    tunnel_auth_header_value: str | None = Field(default=None, max_length=4096)
    tunnel_auth_cookie: str | None = Field(default=None, max_length=4096)
    comfyui_concurrency: int | None = Field(default=None, ge=1, le=64)
    job_deadline_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    allow_resubmit_lost_jobs: bool | None = None
    idle_stop_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    fallback_model: str | None = Field(default=None, max_length=100)


class InstanceOut(InstanceFacts):
    label: str | None = None
    uptime_mins: float | None = None
    selected: bool = Field(default=False, description="The instance the GPU settings point at.")


class InstanceList(BaseModel):
    instances: list[InstanceOut]
    selected_id: int | None = None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    auth_required: bool
    prefect_api_url: str | None
    panel: bool
    runs: int
    max_input_bytes: int
    max_input_pixels: int
