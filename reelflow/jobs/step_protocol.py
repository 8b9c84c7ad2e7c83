"""What a GPU job needs from its store step (``reelflow.jobs.step.StepHandle`` provides it)."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class Step(Protocol):
    run_id: str
    name: str
    provider_job_id: str | None

    def record_job(self, job_id: str, endpoint: str | None = None) -> None: ...

    def record_lease(self, limit: str, lease_id: UUID, message: str) -> None: ...

    async def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None: ...

    def log(self, message: str, kind: str = "log") -> None: ...
