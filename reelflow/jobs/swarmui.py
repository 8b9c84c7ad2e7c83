"""``i2v_swarmui``'s job: Wan 2.2 image-to-video on the user's GPU through SwarmUI.

SwarmUI has no job id, so reelflow mints one (stored before the request is sent) and tags the request with it
(``extra_metadata.job_id``). A resumed step looks for the tagged output instead of generating again; a job that
is provably gone is generated again only when the block allows it. Cancelling the run interrupts the session.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from reelflow.core.catalog import load_catalog
from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.errors import ProviderError
from reelflow.gpu.reach import swarm_client
from reelflow.jobs.gpu import gpu_step, read_media, scratch_dir, video_output
from reelflow.jobs.job import ProviderJob, run_job
from reelflow.jobs.step import Step
from reelflow.providers.swarmui import SwarmClient
from reelflow.settings import get_settings

STEP = "i2v_swarmui"


class SwarmJob(ProviderJob[Path]):
    """``await run_job(step, SwarmJob(...))`` -> the video, downloaded to the run's scratch folder.

    SwarmUI takes the request and streams its answer on one websocket, so ``submit`` only readies the tagged job
    and ``wait`` sends it (``SwarmClient.generate_video``); a resumed job is looked up by its tag instead.
    """

    provider = "SwarmUI"

    def __init__(self, swarm: SwarmClient, step: Step, run_id: str, image: MediaRef, params: VideoParams, *,
                 deadline_s: float, allow_resubmit: bool) -> None:
        self.swarm, self.step, self.run_id = swarm, step, run_id
        self.image, self.params = image, params
        self.deadline_s, self.allow_resubmit = deadline_s, allow_resubmit
        self.endpoint = swarm.base_url
        self._image_bytes: bytes | None = None
        self._submitted = False

    async def prepare(self) -> None:
        if self._image_bytes is None:
            self._image_bytes = await read_media(self.image)

    def mint_id(self) -> str:
        return f"{self.run_id}-{uuid.uuid4().hex[:12]}"

    async def submit(self) -> str:
        assert self.job_id is not None
        self._submitted = True
        return self.job_id

    async def wait(self) -> Path | None:
        job_id, folder = self.job_id, scratch_dir(self.run_id)
        assert job_id is not None
        if not self._submitted:
            return await self._wait_resumed(job_id, folder)
        assert self._image_bytes is not None

        async def progress(overall: float, current: float) -> None:
            await self.step.progress(0.05 + 0.9 * overall, f"SwarmUI {overall:.0%}")

        output = await self.swarm.generate_video(job_id, self._image_bytes, self.params, on_progress=progress,
                                                 download_dir=folder, allow_resubmit=self.allow_resubmit,
                                                 deadline_s=self.deadline_s)
        assert output.media.path is not None
        return Path(output.media.path)

    async def _wait_resumed(self, job_id: str, folder: Path) -> Path | None:
        self.step.log(f"resuming SwarmUI job {job_id}: looking for its tagged output, not generating again")
        ref = await self.swarm.recover(job_id, time.monotonic() + self.deadline_s)
        if ref is not None:
            return await self.swarm.download(ref, folder / f"{job_id}-{Path(ref).name}")
        if not self.allow_resubmit:
            raise ProviderError(f"SwarmUI job {job_id} was lost (nothing runs and no output carries "
                                "its id). Not generating again: that would be a second paid GPU job; allow it "
                                "with `reelflow gpu set --allow-resubmit-lost-jobs`, or run again with --force")
        self.step.log(f"SwarmUI job {job_id} was lost; generating again (allow_resubmit_lost_jobs is on)")
        return None

    async def cancel(self) -> str:
        await self.swarm.interrupt()
        return "cancelled: SwarmUI generation interrupted (InterruptAll for this session)"


async def run_swarmui(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Generate (or recover) the video on the configured SwarmUI; it is a scratch file."""
    model = load_catalog().get(model_id, kind="i2v")
    poll_s = get_settings().swarmui_poll_interval_s

    async with gpu_step(run_id, STEP, model, "swarmui") as gs:
        async with swarm_client(gs.gpu, gs.reached.url, poll_interval_s=poll_s) as swarm:
            job = SwarmJob(swarm, gs.step, run_id, image, params, deadline_s=gs.deadline_s,
                           allow_resubmit=gs.gpu.allow_resubmit_lost_jobs)
            started = time.monotonic()
            path = await run_job(gs.step, job)
            gpu_seconds = time.monotonic() - started
        gs.charge(gpu_seconds, job_id=gs.step.provider_job_id, output=path.name)
        await gs.step.progress(1.0, f"downloaded {path.name}", force=True)
    return await video_output(path, params, gs.step.provider_job_id or "", gs.step.cost_usd)
