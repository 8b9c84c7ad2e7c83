"""``POST /api/runs/{id}/retry`` of a failed run that went to a worker: each retry is a new flow run of the same
recorded run, and it ends (failed again, or completed once the GPU is fixed), never stuck at "running"."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from reelflow.runs.prepare import prepare_run
from reelflow.store import repo
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.comfyui.nodes import WAN_MODELS
from tests.support.deployments import one_worker, read_flow_run
from tests.support.gpu import save_gpu, wan_spec
from tests.support.polling import wait_until
from tests.support.web_api import auth_headers, serve_api

pytestmark = pytest.mark.usefixtures("fast_polls")


def _ended(run_id: str, after_flow_runs: set[str]) -> str:
    """Wait for the run to end in a flow run other than ``after_flow_runs``; returns its status."""
    def check() -> str | None:
        run = repo.get_run(run_id)
        return run.status if run.status in repo.FINISHED and run.prefect_flow_run_id not in after_flow_runs else None

    return wait_until(check, 120, f"run {run_id} to end in a new flow run")


def test_retrying_a_failed_worker_run_twice_starts_a_new_flow_run_each_time(fresh_comfy: ComfyEmulator, image: Path,
                                                                             tmp_path: Path) -> None:
    fresh_comfy.configure(installed_models={})
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    with (one_worker(tmp_path), serve_api(via="deployment") as api,
          httpx.Client(base_url=api.url, timeout=60, headers=auth_headers()) as client):
        run_id = prepare_run(wan_spec(image), force=True).run.run_id
        api.launcher.start(run_id, repo.get_run(run_id).spec)
        assert _ended(run_id, set()) == "failed"
        flow_runs = {repo.get_run(run_id).prefect_flow_run_id or ""}

        answer = client.post(f"/api/runs/{run_id}/retry")
        assert answer.status_code == 200 and answer.json()["run_id"] == run_id, answer.text
        assert _ended(run_id, flow_runs) == "failed", "the first retry ran in a new flow run and failed again"
        flow_runs.add(repo.get_run(run_id).prefect_flow_run_id or "")

        fresh_comfy.configure(installed_models={folder: list(files) for folder, files in WAN_MODELS.items()})
        answer = client.post(f"/api/runs/{run_id}/retry")
        assert answer.status_code == 200, answer.text
        assert _ended(run_id, flow_runs) == "completed", repo.get_run(run_id).error
        final = repo.get_run(run_id)
        assert len(flow_runs | {final.prefect_flow_run_id}) == 3, "three flow runs: the first and one per retry"
        assert read_flow_run(final.prefect_flow_run_id or "").state.is_completed()
        assert final.video is not None and len(fresh_comfy.stats()["submits"]) == 1
