"""Settings read from the environment (prefix ``REELFLOW_``) with offline-friendly defaults, and the one accessor
for ``PREFECT_API_URL``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".reelflow"


class Wan22FileNames(BaseSettings):
    """The built-in Wan 2.2 graph's model files as ComfyUI lists them; override each with
    ``REELFLOW_WAN22_<FIELD>`` (e.g. a fp16 UNet)."""

    model_config = SettingsConfigDict(env_prefix="REELFLOW_WAN22_", env_ignore_empty=True, extra="ignore")

    high_noise_unet: str = "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"
    low_noise_unet: str = "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"
    high_noise_lora: str = "wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors"
    low_noise_lora: str = "wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"
    text_encoder: str = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    vae: str = "wan_2.1_vae.safetensors"


class FalJobSettings(BaseSettings):
    """fal jobs' deadlines, status polling and call retries (``REELFLOW_FAL_<FIELD>``). The number of fal jobs at
    once is ``REELFLOW_FAL_CONCURRENCY``, the size of the Prefect limit ``fal``."""

    model_config = SettingsConfigDict(env_prefix="REELFLOW_FAL_", extra="ignore")

    video_deadline_s: float = Field(default=1800.0, gt=0, description="Deadline of one video job.")
    image_deadline_s: float = Field(default=300.0, gt=0, description="Deadline of one image job.")
    deadlines: dict[str, float] = Field(
        default_factory=dict, description='Per-model deadlines in seconds, JSON: {"veo-3.1-i2v": 3600}.')
    poll_min_s: float = Field(default=0.1, gt=0, description="First status poll interval.")
    poll_max_s: float = Field(default=2.0, gt=0, description="Longest status poll interval.")
    retry_attempts: int = Field(default=6, ge=1, description="Tries of one status/result/cancel call.")
    retry_initial_s: float = Field(default=1.0, gt=0, description="First back-off of those calls (doubles).")

    def deadline_s(self, model_id: str, kind: str) -> float:
        """Seconds a job may take from submit (or resume) to result before it is cancelled."""
        if model_id in self.deadlines:
            return self.deadlines[model_id]
        return self.video_deadline_s if kind in ("i2v", "t2v") else self.image_deadline_s


class SwarmWanSettings(BaseSettings):
    """SwarmUI's model names and Wan 2.2 I2V + LightX2V defaults; override with ``REELFLOW_SWARM_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="REELFLOW_SWARM_", extra="ignore")

    base_model: str = "OfficialStableDiffusion/sd_xl_base_1.0"
    high_noise_model: str = "wan2.2_i2v_high_noise_14B_fp8_scaled"
    low_noise_model: str = "wan2.2_i2v_low_noise_14B_fp8_scaled"
    model_subtype: str = "Stable-Diffusion"
    swap_percent: float = Field(default=0.5, ge=0.5, le=1.0)
    steps: int = Field(default=4, ge=1)
    cfg: float = 1.0
    fps: int = Field(default=16, ge=1)
    frames: int = Field(default=81, ge=1)
    resolution: str = "Image Aspect, Model Res"
    video_format: str = "h264-mp4"
    extra_params: dict[str, Any] = Field(default_factory=dict)

    @property
    def video_extension(self) -> str:
        fmt = self.video_format.lower()
        return next((ext for ext in ("mp4", "webm", "gif", "webp") if ext in fmt), "mov")


class Settings(BaseSettings):
    """Everything reelflow reads from the environment under ``REELFLOW_``. The secrets here are reelflow's own
    (the REST API token, a Prefect database URL with its password), held as ``SecretStr``; provider credentials
    live in the Blocks of ``blocks/``."""

    model_config = SettingsConfigDict(env_prefix="REELFLOW_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Data folder: store, storage, Prefect home.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in home.")
    storage_dir: Path | None = Field(default=None, description="Local output folder; default home/storage.")
    prefect_mode: Literal["auto", "server", "ephemeral"] = Field(
        default="auto",
        description="auto: use PREFECT_API_URL or a background local server reelflow starts and reuses; "
        "server: require PREFECT_API_URL; ephemeral: Prefect's per-process server.",
    )
    prefect_port: int = Field(default=4200, ge=0, le=65535, description="0 picks any free port.")
    prefect_database_url: SecretStr | None = Field(
        default=None, description="Database of the Prefect server `reelflow up` starts, e.g. "
        "postgresql+asyncpg://user:pw@host:5432/prefect; default SQLite in Prefect's home.")
    max_input_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    download_timeout_s: float = Field(default=30.0, gt=0)
    allow_private_urls: bool = Field(
        default=False, description="Allow fetching image URLs from loopback, link-local and private addresses."
    )
    fal_concurrency: int = Field(default=2, ge=1, le=1000)
    gpu_block: str = Field(default="default", description="Name of the GpuEndpoint block to use.")
    comfyui_poll_interval_s: float = Field(default=15.0, gt=0, description="ComfyUI /history + /queue poll period.")
    swarmui_poll_interval_s: float = Field(default=15.0, gt=0, description="SwarmUI recovery poll period.")
    storage_block: str | None = Field(default=None, description="Name of the R2 storage block, if any.")
    api_token: SecretStr | None = Field(
        default=None, description="The REST API's token; default: the one `serve`/`up` keep in home/api-token.")
    api_auth: Literal["on", "off"] = Field(
        default="on", description="off: the REST API answers anyone who can reach it (logged loudly at start).")
    allowed_hosts: str = Field(
        default="", description="Comma-separated extra Host names the REST API answers to, e.g. reelflow.lan.")
    max_input_pixels: int = Field(default=40_000_000, gt=0, description="Largest input image, in pixels.")
    body_timeout_s: float = Field(default=30.0, gt=0, description="A request body that stalls this long gets 408.")
    warm_worker: bool = Field(default=True, description="Workers keep one flow-run process started ahead of time.")
    wan22: Wan22FileNames = Field(default_factory=Wan22FileNames)
    fal: FalJobSettings = Field(default_factory=FalJobSettings)
    swarm: SwarmWanSettings = Field(default_factory=SwarmWanSettings)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'reelflow.db'}"

    @property
    def storage_path(self) -> Path:
        return self.storage_dir or self.home / "storage"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def api_token_path(self) -> Path:
        return self.home / "api-token"

    @property
    def extra_hosts(self) -> list[str]:
        return [name.strip() for name in self.allowed_hosts.split(",") if name.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def prefect_api_url() -> str | None:
    """The Prefect server this process talks to (``PREFECT_API_URL``; empty means none, as for Prefect).

    Read from the environment on every call, never cached: ``prefect_server.ensure_api`` may set it after
    ``Settings`` were read, and Prefect itself reads it from there when it is imported.
    """
    return os.environ.get("PREFECT_API_URL") or None


def use_prefect_api(url: str) -> None:
    """Point this process, and Prefect when it is imported after this, at the server at ``url``."""
    os.environ["PREFECT_API_URL"] = url
