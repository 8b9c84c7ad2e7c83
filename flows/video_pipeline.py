"""``video_pipeline``: [generate_image ->] i2v_<backend> -> cache_r2, recorded in the store and in Prefect."""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Cancelled, State

from flows.fallback import run_i2v
from flows.run_outcome import executing
from reelflow.core.catalog import VIDEO_KINDS, load_catalog
from reelflow.core.domain import MediaRef
from reelflow.core.money import total_usd
from reelflow.core.spec import image_params, parse_spec, video_params
from reelflow.runs.prepare import prepare_run
from reelflow.storage import get_storage
from reelflow.store import repo
from reelflow.store.views import OutputView, RunView
from tasks.cache_r2 import cache_r2

CANCELLED_NOTE = "cancelled through reelflow"
I2V_MODULES = {"local": "tasks.i2v_local", "fal": "tasks.i2v_fal", "comfyui": "tasks.i2v_comfyui",
               "swarmui": "tasks.i2v_swarmui"}


class _I2vTasks(Mapping[str, Any]):
    """Each backend's i2v task (``tasks.i2v_<backend>.i2v_<backend>``), imported on first use, so that a flow run
    loads only its own model's client libraries."""

    def __getitem__(self, backend: str) -> Any:
        name = I2V_MODULES[backend]
        return getattr(importlib.import_module(name), name.rpartition(".")[2])

    def __iter__(self) -> Iterator[str]:
        return iter(I2V_MODULES)

    def __len__(self) -> int:
        return len(I2V_MODULES)


I2V_TASKS = _I2vTasks()


def _run_name() -> str:
    params = flow_run.parameters
    model = (params.get("spec") or {}).get("model", "video")
    return f"{model}-{(params.get('run_id') or 'new')[:12]}"


def _media_of(output: OutputView, storage: str) -> MediaRef:
    """How tasks and providers read a stored object: the local file, or a fresh presigned bucket URL."""
    if output.path:
        return MediaRef(path=output.path, content_type=output.content_type)
    return get_storage(storage).readable(output.key, output.content_type)


def run_cost(run: RunView) -> Decimal | None:
    """The sum of the completed provider steps' costs (storing is not priced); unknown (None) when one of them is
    unknown, e.g. GPU time on an endpoint without a $/hour: unknown is not free."""
    priced = [step for step in run.steps if step.status == "completed" and not step.name.startswith("cache_r2")]
    return total_usd(step.cost_usd for step in priced)


async def execute(run: RunView) -> RunView:
    """Run the steps of a recorded run; the run ends completed, failed (with the reason) or cancelled (asked
    from any process, see ``reelflow.runs.cancel``, or this task cancelled: Ctrl-C, a launcher's shutdown)."""
    spec = parse_spec(run.spec)
    catalog = load_catalog()
    model = catalog.get(spec.model, kind=VIDEO_KINDS)
    run_id = run.run_id
    async with executing(run_id):
        seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**32)
        source = next((o for o in run.outputs if o.role in ("input", "image")), None)
        if model.kind == "t2v":
            from tasks.t2v_fal import t2v_fal

            made = await t2v_fal(run_id, model.id, video_params(spec, model, (16, 9), seed))
            await cache_r2(run_id, made, spec.storage)
            repo.mark_run(run_id, "completed", cost_usd=run_cost(repo.get_run(run_id)))
            return repo.get_run(run_id)
        if source is None:
            from tasks.generate_image import generate_image

            image_model = catalog.get(spec.image_model, kind="t2i")
            made = await generate_image(run_id, image_model.id, image_params(spec, image_model, seed))
            source = await cache_r2(run_id, made, spec.storage)
        size = (source.width or 16, source.height or 9)
        produced = await run_i2v(I2V_TASKS, run_id, model, _media_of(source, spec.storage), spec, size, seed)
        await cache_r2(run_id, produced, spec.storage)
        repo.mark_run(run_id, "completed", cost_usd=run_cost(repo.get_run(run_id)))
    return repo.get_run(run_id)


@flow(name="video_pipeline", flow_run_name=_run_name, log_prints=True)
async def video_pipeline(spec: dict[str, Any], run_id: str | None = None,
                         force: bool = False) -> dict[str, Any] | State:
    """Make one video from ``spec`` (see ``reelflow.core.spec.PipelineSpec``). An identical finished run is
    returned from the store unless ``force`` is set. ``run_id`` names a run already recorded by a caller.
    A cancelled run ends the flow run Cancelled."""
    if run_id is None or repo.find_run(run_id) is None:
        prepared = prepare_run(spec, force=force, run_id=run_id)
        if prepared.cached:
            return prepared.run.model_dump(mode="json")
        run = prepared.run
    else:
        run = repo.get_run(run_id)
        if run.status == "completed":
            return run.model_dump(mode="json")
    ended = run if run.status == "cancelled" else await execute(run)
    if ended.status == "cancelled":
        return Cancelled(message=CANCELLED_NOTE)
    return ended.model_dump(mode="json")
