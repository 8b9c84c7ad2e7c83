"""Settings read from the environment (prefix ``REELFLOW_``) with offline-friendly defaults, and the one accessor
for ``PREFECT_API_URL``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    api_token: SecretStr | None = Field(default=None, description="Bearer token the REST API requires on writes.")
    warm_worker: bool = Field(default=True, description="Workers keep one flow-run process started ahead of time.")
    wan22: Wan22FileNames = Field(default_factory=Wan22FileNames)

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
