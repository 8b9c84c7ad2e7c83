"""How a flow executes a recorded run: marked running, watched for a cancel asked from any process (see
``reelflow.runs.cancel``), and ended cancelled or failed, with the reason, when the flow stops early. The one-video
flow and the pipeline flow both run inside ``executing``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from prefect.runtime import flow_run

from reelflow.errors import ProviderCancelledError
from reelflow.jobs.cancel_signal import run_cancelled
from reelflow.runs import cancel as cancelling
from reelflow.store import repo


@asynccontextmanager
async def executing(run_id: str, *, on_cancel: Callable[[str], None] | None = None) -> AsyncIterator[None]:
    """Run the body as the run's execution. A cancel (this task cancelled: a request seen by the watcher, Ctrl-C,
    a launcher's shutdown) ends the run ``cancelled`` and is not raised on, so the flow can return a Cancelled
    state; ``on_cancel`` first closes what the body left open. A failure ends it ``failed`` and is raised on."""
    flow_run_id = str(flow_run.id) if flow_run.id else None
    repo.mark_run(run_id, "running", prefect_flow_run_id=flow_run_id)
    current = asyncio.current_task()
    assert current is not None
    watcher = asyncio.create_task(cancelling.watch(run_id, flow_run_id, current))
    try:
        yield
    except asyncio.CancelledError:
        if on_cancel is not None:
            on_cancel("the run was cancelled")
        repo.mark_run(run_id, "cancelled", error="cancelled")
        current.uncancel()  # the flow returns a Cancelled state instead, so Prefect records the run Cancelled
    except ProviderCancelledError as exc:  # stopped at the provider itself (ComfyUI's own Cancel button)
        repo.mark_run(run_id, "cancelled", error=str(exc))
    except Exception as exc:
        repo.mark_run(run_id, "failed", error=str(exc) or type(exc).__name__)
        raise
    except BaseException as exc:
        if run_cancelled(exc):  # the SIGTERM a Prefect runner sends on Cancelling landed before the watcher saw it
            repo.mark_run(run_id, "cancelled", error="cancelled in Prefect")
        raise
    finally:
        watcher.cancel()
