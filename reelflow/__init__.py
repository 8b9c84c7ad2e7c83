"""reelflow: prompts and images to videos through AI models, orchestrated by Prefect.

``reelflow.run(spec)`` renders (or reuses) a video and returns the run; ``reelflow.get(run_id)``
reads one back. Imports are lazy so that ``import reelflow`` stays cheap and Prefect is configured
before it is first imported.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PipelineSpec", "acancel", "arun", "asubmit", "await_run", "cancel", "get", "resume_pipeline", "run",
           "run_pipeline", "submit", "submit_pipeline", "wait"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("run", "arun", "get", "submit", "asubmit", "wait", "await_run", "cancel", "acancel", "run_pipeline",
                "submit_pipeline", "resume_pipeline"):
        from reelflow import api

        return getattr(api, name)
    if name == "PipelineSpec":
        from reelflow.core.spec import PipelineSpec

        return PipelineSpec
    raise AttributeError(name)
