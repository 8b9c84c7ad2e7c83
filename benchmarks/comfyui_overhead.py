"""What reelflow adds around a 2 s ComfyUI job, and how many HTTP calls one job costs.

    .venv/bin/python benchmarks/comfyui_overhead.py [--repeat 5] [--job-seconds 2]

Runs ``wan-2.2-i2v-comfyui`` pipelines in-process (``reelflow.arun``: Prefect flow, GPU slot, health check,
model preflight, upload, submit, websocket + polling, download, probe, copy to storage) against the ComfyUI
emulator on 127.0.0.1, in a fresh REELFLOW_HOME with reelflow's background Prefect server, default poll period.
The first run (block type registration, limit creation, imports) is reported apart.

- GPU time: the job's execution on the (emulated) GPU, from ComfyUI's own history timestamps.
- end-to-end overhead: wall time of the whole pipeline minus GPU time.
- submit -> done overhead: from the submit (stored event) to the video downloaded, minus GPU time.
- HTTP calls: counted by the emulator per job (plus websocket connections).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOME = Path(tempfile.mkdtemp(prefix="reelflow-comfy-bench-"))
os.environ.update(REELFLOW_HOME=str(HOME), REELFLOW_PREFECT_PORT="0")
for name in [n for n in os.environ if n.startswith("PREFECT_")]:
    del os.environ[name]

from reelflow.orchestration import prefect_server  # noqa: E402

prefect_server.ensure_api()

import reelflow  # noqa: E402
from blocks.gpu_endpoint import GpuEndpoint  # noqa: E402
from reelflow.gpu.cost import execution_seconds  # noqa: E402
from reelflow.store import repo  # noqa: E402
from tests.emulators.comfyui import ComfyEmulator  # noqa: E402
from tests.support.files import make_image  # noqa: E402


async def one(emu: ComfyEmulator, spec: dict) -> dict[str, float]:
    emu.reset_stats()
    start = time.perf_counter()
    run = await reelflow.arun(spec, force=True)
    wall = time.perf_counter() - start
    if run.status != "completed":
        raise SystemExit(f"run failed: {run.error}")
    stats = emu.stats()
    prompt_id = stats["submits"][0]
    gpu = execution_seconds(emu.state.history[prompt_id]) or 0.0
    events = repo.events_after(run.run_id)
    submitted = next(e.created_at for e in events if e.message.startswith("submitted ComfyUI prompt"))
    downloaded = next(e.created_at for e in events if e.message.startswith("downloaded "))
    steps = {step.name: step for step in run.steps}
    return {"wall": wall, "gpu": gpu, "submit_to_done": (downloaded - submitted).total_seconds(),
            "before_submit": (submitted - steps["i2v_comfyui"].started_at).total_seconds(),
            "after_download": (run.finished_at - downloaded).total_seconds(),
            "http": stats["http_calls"], "ws": stats["ws_connects"], "calls": stats["calls"]}


def show(label: str, row: dict) -> None:
    print(f"{label:<10} wall {row['wall']:5.2f} s  GPU {row['gpu']:5.2f} s  end-to-end overhead "
          f"{row['wall'] - row['gpu']:5.2f} s  submit->done overhead {row['submit_to_done'] - row['gpu']:5.2f} s  "
          f"HTTP calls {row['http']}  websockets {row['ws']}  (task start->submit {row['before_submit']:.2f} s, "
          f"download->run end {row['after_download']:.2f} s)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--job-seconds", type=float, default=2.0)
    args = parser.parse_args()
    image = make_image(HOME / "bench.png", size=(640, 360))
    spec = {"model": "wan-2.2-i2v-comfyui", "image": str(image), "prompt": "benchmark", "duration": 5.0}
    with ComfyEmulator(job_seconds=args.job_seconds, progress_steps=4) as emu:
        await GpuEndpoint(provider="local", comfyui_url=emu.url).asave("default", overwrite=True)
        show("first", await one(emu, spec))
        rows = [await one(emu, spec) for _ in range(args.repeat)]
        for row in rows:
            show("warm", row)
        median = {key: statistics.median(r[key] for r in rows) for key in ("wall", "gpu", "submit_to_done")}
        print(f"\nmedian of {len(rows)} warm runs of a {args.job_seconds:g} s job: end-to-end overhead "
              f"{median['wall'] - median['gpu']:.2f} s, submit->done overhead "
              f"{median['submit_to_done'] - median['gpu']:.2f} s, "
              f"{rows[-1]['http']} HTTP calls + {rows[-1]['ws']} websocket per job")
        print("calls of the last job:", ", ".join(f"{k} x{v}" for k, v in sorted(rows[-1]["calls"].items())))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    finally:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)
        prefect_server.stop_server()
