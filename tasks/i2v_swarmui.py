"""``i2v_swarmui``: Wan 2.2 image-to-video on the user's GPU through SwarmUI.

See ``reelflow.jobs.swarmui`` for how a job without a SwarmUI job id is still paid for only once.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.jobs.swarmui import run_swarmui


@task(name="i2v_swarmui", cache_policy=NO_CACHE, task_run_name="i2v_swarmui-{run_id}")
async def i2v_swarmui(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Generate (or recover) the video on the configured SwarmUI and return it as a scratch file."""
    return await run_swarmui(run_id, model_id, image, params)
