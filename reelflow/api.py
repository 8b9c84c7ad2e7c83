"""The Python API: ``run`` a pipeline and wait for it, ``get`` a run. See README "Python API"."""

from __future__ import annotations

import asyncio
from typing import Any

from reelflow.prefect_runtime import ensure_api
from reelflow.runs import prepare_run
from reelflow.spec import PipelineSpec
from reelflow.store import repo
from reelflow.store.views import RunView


async def arun(spec: dict[str, Any] | PipelineSpec, *, force: bool = False) -> RunView:
    """Validate ``spec``, reuse an identical finished run (``cached=True``) unless ``force``, else render.

    Bad input raises ``SpecError``/``ModelUnavailableError`` before anything is recorded; a run that
    fails is returned with ``status == "failed"`` and its ``error``.
    """
    prepared = prepare_run(spec, force=force)
    if prepared.cached:
        return prepared.run
    ensure_api()
    from flows.video_pipeline import video_pipeline

    await video_pipeline(spec=prepared.run.spec, run_id=prepared.run.run_id, force=force, return_state=True)
    return repo.get_run(prepared.run.run_id)


def run(spec: dict[str, Any] | PipelineSpec, *, force: bool = False) -> RunView:
    """Blocking form of :func:`arun`."""
    return asyncio.run(arun(spec, force=force))


def get(run_id: str) -> RunView:
    """The run as stored now (status, outputs, steps, cost, error). Raises ``RunNotFoundError``."""
    return repo.get_run(run_id)
