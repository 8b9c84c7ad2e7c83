"""fal job settings from the environment (prefix ``REELFLOW_FAL_``): deadlines and status polling.

The number of concurrent fal jobs is ``REELFLOW_FAL_CONCURRENCY`` (``reelflow.settings``), the
size of the Prefect limit ``fal``.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from reelflow.core.catalog import ModelEntry
from reelflow.providers.fal.queue import RetryPolicy


class FalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELFLOW_FAL_", extra="ignore")

    video_deadline_s: float = Field(default=1800.0, gt=0, description="Deadline of one video job.")
    image_deadline_s: float = Field(default=300.0, gt=0, description="Deadline of one image job.")
    deadlines: dict[str, float] = Field(
        default_factory=dict, description='Per-model deadlines in seconds, JSON: {"veo-3.1-i2v": 3600}.')
    poll_min_s: float = Field(default=0.1, gt=0, description="First status poll interval.")
    poll_max_s: float = Field(default=2.0, gt=0, description="Longest status poll interval.")
    retry_attempts: int = Field(default=6, ge=1, description="Tries of one status/result/cancel call.")
    retry_initial_s: float = Field(default=1.0, gt=0, description="First back-off of those calls (doubles).")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.retry_attempts, initial_s=self.retry_initial_s)

    def deadline_for(self, model: ModelEntry) -> float:
        """Seconds a job may take from submit (or resume) to result before it is cancelled."""
        if model.id in self.deadlines:
            return self.deadlines[model.id]
        return self.image_deadline_s if model.kind == "t2i" else self.video_deadline_s


@lru_cache(maxsize=1)
def get_fal_settings() -> FalSettings:
    return FalSettings()
