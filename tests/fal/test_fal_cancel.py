"""A fal run started by ``reelflow run`` is cancelled by a plain user script (``reelflow.cancel``, no PREFECT_*
variables) in another process: the fal request is cancelled, the run ends cancelled in the store and in Prefect."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from prefect.client.schemas.objects import StateType

from reelflow.store import repo
from tests.emulators.fal import FalEmulator
from tests.support.cli import ROOT
from tests.support.deployments import read_flow_run
from tests.support.fal_pipeline import Env, start_cli, wan_args
from tests.support.polling import wait_until

CANCEL = "import json, sys, reelflow\nprint(json.dumps(reelflow.cancel(sys.argv[1], timeout=30).status))\n"


def test_a_user_script_cancels_a_fal_run_of_a_reelflow_run_process(emu: FalEmulator, env: Env, photo: Path) -> None:
    emu.configure(processing_s=60.0)
    starter = start_cli(env, *wan_args(photo, "cancel me from a script", "--force"))
    try:
        wait_until(lambda: emu.stats()["by_status"].get("IN_PROGRESS"), 90, "the request to run at fal")
        [run] = [r for r in repo.list_runs(limit=5, status="running")[0] if r.model == "wan-2.5-i2v"]
        plain = {k: v for k, v in env.items() if not k.startswith("PREFECT_")}
        asked = time.monotonic()
        done = subprocess.run([sys.executable, "-c", CANCEL, run.run_id], cwd=ROOT, env=plain, capture_output=True,
                              text=True, timeout=120)
        took = time.monotonic() - asked
        assert done.returncode == 0 and json.loads(done.stdout.splitlines()[-1]) == "cancelled", done.stderr[-3000:]
        print(f"reelflow run + fal: reelflow.cancel() from a script returned after {took:.2f} s")
        assert took <= 10.0
        out, err = starter.communicate(timeout=30)
        assert starter.returncode == 1 and json.loads(out)["status"] == "cancelled", err[-3000:]
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.communicate(timeout=10)
    stats = emu.stats()
    assert stats["cancels"] == list(stats["jobs"]) and stats["by_status"] == {"CANCELLED": 1}
    ended = repo.get_run(run.run_id)
    assert ended.status == "cancelled" and [s.status for s in ended.steps] == ["cancelled"]
    assert read_flow_run(ended.prefect_flow_run_id or "").state.type == StateType.CANCELLED
