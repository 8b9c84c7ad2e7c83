"""The Python API: ``run`` a pipeline and wait for it, or ``submit`` it and ``get``/``wait``/``cancel`` later.

See README "Python API".
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

from reelflow.core.domain import Via
from reelflow.core.spec import PipelineSpec
from reelflow.runs import cancel as cancelling
from reelflow.runs.launcher import execute_here, process_launcher
from reelflow.runs.prepare import prepare_run
from reelflow.store import repo
from reelflow.store.views import RunView


async def arun(spec: dict[str, Any] | PipelineSpec, *, force: bool = False) -> RunView:
    """Validate ``spec``, reuse an identical finished run (``cached=True``) unless ``force``, else render.

    Bad input raises ``SpecError``/``ModelUnavailableError`` before anything is recorded; a run that
    fails is returned with ``status == "failed"`` and its ``error``.
    """
    prepared = prepare_run(spec, force=force)
    if not prepared.cached:
        await execute_here(prepared.run.run_id, prepared.run.spec, force=force)
    return repo.get_run(prepared.run.run_id)


def run(spec: dict[str, Any] | PipelineSpec, *, force: bool = False) -> RunView:
    """Blocking form of :func:`arun`."""
    return asyncio.run(arun(spec, force=force))


def get(run_id: str) -> RunView:
    """The run as stored now (status, outputs, steps, cost, error). Raises ``RunNotFoundError``."""
    return repo.get_run(run_id)


async def asubmit(spec: dict[str, Any] | PipelineSpec, *, force: bool = False, via: Via = "auto") -> str:
    """Record a run and start it without waiting; returns its run id (an identical finished run's id if cached).

    ``via="auto"`` triggers the ``video-pipeline`` deployment when the Prefect server has it and a worker of
    its pool is online, and otherwise renders in a detached child process that owns the run and outlives this
    one (``reelflow.runs.detached``); ``"deployment"`` or ``"local"`` insist on one of them. Bad input raises
    before anything is recorded.
    """
    prepared = prepare_run(spec, force=force)
    if not prepared.cached:
        await process_launcher().astart(prepared.run.run_id, prepared.run.spec, force=force, via=via)
    return prepared.run.run_id


def submit(spec: dict[str, Any] | PipelineSpec, *, force: bool = False, via: Via = "auto") -> str:
    """Blocking form of :func:`asubmit` (returns as soon as the run is queued)."""
    return asyncio.run(asubmit(spec, force=force, via=via))


async def await_run(run_id: str, timeout: float | None = None) -> RunView:  # noqa: ASYNC109
    """Wait until the run is completed, failed or cancelled; ``TimeoutError`` after ``timeout`` seconds."""
    found = await cancelling.await_end(run_id, math.inf if timeout is None else timeout)
    if found.status not in repo.FINISHED:
        raise TimeoutError(f"run {run_id} is still {found.status} after {timeout:g} s")
    return found


def wait(run_id: str, timeout: float | None = None) -> RunView:
    """Blocking form of :func:`await_run`."""
    return asyncio.run(await_run(run_id, timeout))


async def acancel(run_id: str, timeout: float = 60.0) -> RunView:  # noqa: ASYNC109
    """Cancel a queued or running run wherever it executes (this process, ``reelflow run``, ``reelflow serve``
    or a worker) and its Prefect flow run; returns the run once it has ended, or as it is after ``timeout`` s.

    A finished run is returned unchanged. The run ends ``cancelled`` (or as it ended, if it finished first).
    """
    found = repo.get_run(run_id)
    if found.status in repo.FINISHED:
        return found
    return await cancelling.cancel_run(run_id, timeout, here=process_launcher())


def cancel(run_id: str, timeout: float = 60.0) -> RunView:
    """Blocking form of :func:`acancel`."""
    return asyncio.run(acancel(run_id, timeout))


def run_pipeline(definition_or_path: Any, inputs: Mapping[str, Any] | None = None, *,
                 force: bool = False) -> RunView:
    """Check and execute a pipeline (a definition, a mapping, YAML/JSON text or a file path) here, blocking until it
    has ended; steps done before with the same key are reused unless ``force``. A bad definition or input raises
    ``PipelineDefinitionError`` naming the step and field before anything is recorded."""
    from reelflow.runs.pipelines import run_pipeline as run_here

    return run_here(definition_or_path, inputs or {}, force=force)


def submit_pipeline(definition_or_path: Any, inputs: Mapping[str, Any] | None = None, *, force: bool = False,
                    via: Via = "auto") -> str:
    """Record a pipeline run and start it without waiting; returns its run id (``get``/``wait``/``cancel`` it)."""
    from reelflow.runs.pipelines import submit_pipeline as submit_here

    return submit_here(definition_or_path, inputs or {}, force=force, via=via)


def resume_pipeline(run_id: str) -> str:
    """Continue a pipeline run whose process died or that failed; only steps that did not complete run again."""
    from reelflow.runs.pipelines import resume_pipeline as resume_here

    return resume_here(run_id)
