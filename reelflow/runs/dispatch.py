"""Deployment runs of recorded runs, through the Prefect API: is a worker online, trigger, cancel, reconcile.

Runs are recorded first (``reelflow.runs.prepare.prepare_run``); ``reelflow.runs.launcher`` decides where
they execute and starts local ones.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Literal
from uuid import UUID

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from reelflow.core.domain import Via
from reelflow.errors import ReelflowError
from reelflow.orchestration.deployments import PIPELINE_DEPLOYMENT, VIDEO_DEPLOYMENT
from reelflow.runs import prefect_rest
from reelflow.settings import prefect_api_url
from reelflow.store import repo
from reelflow.store.links import link_flow_run
from reelflow.store.views import RunView

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, StateType

# Prefect's StateType values (a str enum: its members compare equal to these)
NOT_STARTED = frozenset({"SCHEDULED", "PENDING", "PAUSED"})
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
POLL_S = 0.25
TRIGGER_ATTEMPTS = 6
PREFECT_END = {"CANCELLED": "cancelled", "CRASHED": "failed", "FAILED": "failed"}


async def deployment_ready(name: str = VIDEO_DEPLOYMENT) -> bool:
    """True when a Prefect server is configured, has the deployment, and its work pool has a worker online now."""
    return await prefect_rest.deployment_ready(name)


async def resolve_via(via: Via, deployment: str = VIDEO_DEPLOYMENT) -> Literal["deployment", "local"]:
    if via != "auto":
        return via
    return "deployment" if await deployment_ready(deployment) else "local"


async def trigger(run: RunView, *, force: bool = False, tags: tuple[str, ...] = (), attempt: int = 0,
                  retry_id: str | None = None, patience_s: float | None = None) -> str:
    """Create a flow run of the ``video-pipeline`` deployment (``pipeline-run`` for a pipeline run) for a recorded
    run; returns the flow run id.

    A busy or restarting server (5xx, 429, refused or dropped connections) is retried with backoff,
    ``TRIGGER_ATTEMPTS`` times or, with ``patience_s``, for that long; the flow run's idempotency key makes a
    retry return the flow run a lost answer had created. If it still fails, the run is marked failed.
    ``attempt`` > 0 starts the run again after its previous flow run crashed (see ``retry_crashed``);
    ``retry_id`` names a user's retry request, which gets a new flow run of its own.
    """
    key = f"reelflow-run-{run.run_id}" + (f"-attempt-{attempt}" if attempt else "") + \
        (f"-retry-{retry_id}" if retry_id else "")
    deployment = deployment_of(run.spec)
    parameters = {"run_id": run.run_id, "force": force} if deployment == PIPELINE_DEPLOYMENT else \
        {"spec": run.spec, "run_id": run.run_id, "force": force}
    try:
        stop = stop_after_attempt(TRIGGER_ATTEMPTS) if patience_s is None else stop_after_delay(patience_s)
        async for call in AsyncRetrying(stop=stop, reraise=True, wait=wait_exponential(multiplier=0.5, max=8),
                                        retry=retry_if_exception(server_busy)):
            with call:
                flow_run_id = await _create_flow_run(deployment, parameters, ["reelflow", f"model:{run.model}", *tags],
                                                     key)
    except prefect_rest.DeploymentNotFoundError:
        message = f"deployment '{deployment}' not found on the Prefect server; run `reelflow setup`"
        repo.mark_run(run.run_id, "failed", error=message)
        raise ReelflowError(message) from None
    except (httpx.HTTPStatusError, httpx.TransportError) as exc:
        message = f"could not create the flow run: {exc}"
        repo.mark_run(run.run_id, "failed", error=message)
        raise ReelflowError(message) from exc
    link_flow_run(run.run_id, flow_run_id, replacing=run.prefect_flow_run_id if attempt or retry_id else None)
    return flow_run_id


def _in_prefect_run() -> bool:
    """Whether this code runs inside a flow or task run (Prefect is then imported already)."""
    if "prefect.context" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def deployment_of(spec: dict) -> str:
    """The deployment that executes a recorded run: a pipeline run's (its spec is a definition, with steps) or the
    one-video flow's."""
    return PIPELINE_DEPLOYMENT if "steps" in spec else VIDEO_DEPLOYMENT


async def _create_flow_run(deployment: str, parameters: dict, tags: list[str], key: str) -> str:
    """Inside a flow (a batch), Prefect's ``run_deployment`` links the new flow run under the caller's; elsewhere
    (a script's ``submit``, the API) plain HTTP creates it without importing Prefect."""
    if not _in_prefect_run():
        return await prefect_rest.create_flow_run(deployment, parameters=parameters, tags=tags,
                                                  idempotency_key=key)
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        flow_run = await run_deployment(deployment, parameters=parameters, timeout=0, tags=tags,
                                        idempotency_key=key)
    except ObjectNotFound:
        raise prefect_rest.DeploymentNotFoundError(deployment) from None
    return str(flow_run.id)


async def retry_crashed(run: RunView, *, force: bool = False, tags: tuple[str, ...] = (), attempt: int = 1) -> bool:
    """Start the run again when Prefect reports its flow run Crashed (the infrastructure failed: the worker
    could not start it, or its process died) before the run finished; True if a new flow run was created.
    A run that failed on its own (bad input, a model error) ends Failed in Prefect and is not retried."""
    if run.status in repo.FINISHED or not run.prefect_flow_run_id:
        return False
    try:
        if await flow_run_state(run.prefect_flow_run_id) != "CRASHED":
            return False
    except httpx.HTTPError:
        return False
    if not repo.take_flow_run(run.run_id, run.prefect_flow_run_id):  # another process started it again
        return False
    repo.add_event(run.run_id, "retry", f"Prefect flow run {run.prefect_flow_run_id} crashed; starting it again")
    try:
        await trigger(repo.get_run(run.run_id), force=force, tags=tags, attempt=attempt)
    except ReelflowError:
        return False
    return True


def server_busy(exc: BaseException) -> bool:
    """Whether a Prefect API call failed in a way a later try may fix: the server busy, restarting or away."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


async def read_flow_run(flow_run_id: str | None) -> FlowRun | None:
    """The flow run as Prefect has it now; None when there is no id or Prefect has no such flow run."""
    if not flow_run_id:
        return None
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            return await client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return None


async def flow_run_state(flow_run_id: str) -> StateType | None:
    flow_run = await read_flow_run(flow_run_id)
    return flow_run.state.type if flow_run is not None and flow_run.state else None


async def await_flow_run_end(flow_run_id: str, timeout: float) -> StateType | None:  # noqa: ASYNC109
    """Poll the flow run until Prefect has it in a final state (or ``timeout`` passes); returns the last state."""
    deadline = time.monotonic() + timeout
    while True:
        state = await flow_run_state(flow_run_id)
        if state is None or state in FINAL or time.monotonic() >= deadline:
            return state
        await asyncio.sleep(POLL_S)


async def cancel_flow_run(flow_run_id: str, *, force_cancelled: bool = False) -> None:
    """Ask Prefect to cancel a flow run: a run not started yet ends Cancelled at once; a running one goes
    through Cancelling, and the process executing it stops it (see ``reelflow.runs.cancel``)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Cancelled, Cancelling

    async with get_client() as client:
        try:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return
        state = flow_run.state
        if state is not None and state.is_final() and not (force_cancelled and state.type != StateType.COMPLETED):
            return
        message = "cancelled through reelflow"
        start_done = force_cancelled or state is None or state.type in NOT_STARTED
        await client.set_flow_run_state(UUID(flow_run_id), Cancelled(message=message) if start_done
                                        else Cancelling(message=message), force=True)


async def reconcile(run: RunView) -> RunView:
    """Bring an unfinished run in line with its Prefect flow run when that ended without updating the store
    (its process was killed, it crashed, or it was cancelled from the Prefect UI). Best effort: a server that
    does not answer leaves the run as it is."""
    if run.status in repo.FINISHED or not run.prefect_flow_run_id or prefect_api_url() is None:
        return run
    try:
        state = await flow_run_state(run.prefect_flow_run_id)
    except httpx.HTTPError:
        return run
    if state in PREFECT_END:
        repo.mark_run(run.run_id, PREFECT_END[state], error=f"Prefect flow run ended {state.value.lower()}")
        return repo.get_run(run.run_id)
    return run
