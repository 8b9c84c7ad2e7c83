"""Settings read from the environment (prefix ``REELFLOW_``) with offline-friendly defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".reelflow"


class Settings(BaseSettings):
    """Everything reelflow reads from the environment. Secrets never live here; see ``blocks/``."""

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
