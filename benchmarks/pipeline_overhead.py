"""Orchestration overhead of a pipeline run: the story pipeline (keyframe -> approve -> 3 shots -> concat) on fal.

    .venv/bin/python benchmarks/pipeline_overhead.py [--processing 5.0] [--limit 2] [--fal-poll-max S]

The keyframe (FLUX schnell) and the three Wan 2.5 shots run against the HTTPS fal emulator (its own process, every
job ``--processing`` s), under the ``fal`` limit; the approval is answered by this script as soon as it waits
(``answer_approval``, as ``reelflow approve`` does); the concat runs on the CPU. A fresh REELFLOW_HOME and the
background Prefect server, as reelflow starts them.

Printed: the makespan (run start -> run end, from the store), the critical path's ideal (keyframe job + ceil(3 /
limit) x job + the concat's own time), their ratio (target <= 1.10), and the median orchestration overhead per step
(target <= 0.3 s): step start (or its slot granted) -> provider call, and provider done -> the next step started.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fal_throughput import _start_emulator  # noqa: E402
from tests.emulators.fal import free_port, prepare_fal_env  # noqa: E402

SHOTS = 3


def _story() -> dict:
    return {
        "name": "story-bench",
        "inputs": {"idea": {"type": "text", "default": "a lighthouse on a cliff at dusk"},
                   "shots": {"type": "texts", "default": [f"shot {i}" for i in range(SHOTS)]}},
        "steps": [
            {"id": "keyframe", "kind": "generate_image", "model": "flux-schnell", "prompt": "$inputs.idea"},
            {"id": "look", "kind": "approve", "target": "keyframe", "timeout": 600},
            {"id": "shots", "kind": "image_to_video", "model": "wan-2.5-i2v", "for_each": "$inputs.shots",
             "image": "$look.image", "prompt": ["$inputs.idea", ", ", "$item"],
             "params": {"duration": 5, "resolution": "480p"}},
            {"id": "film", "kind": "concat", "videos": ["$shots.video"], "params": {"crossfade": 0.5}},
        ],
    }


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def _answer_when_waiting(run_id: str) -> float:
    """Approve as soon as the approval can take an answer (its row waiting and its flow run Paused in Prefect).

    The answer is sent from a thread, as from another process: ``answer_approval`` blocks while it waits for the
    flow run to leave Running, and on the flow's own event loop it would keep the flow from pausing (a 10-20 s
    stall of the makespan whenever the row was seen waiting before Prefect showed Paused)."""
    from reelflow.runs.approvals import NotWaitingError, answer_approval
    from reelflow.store import pipeline_steps

    while True:
        steps = await asyncio.to_thread(pipeline_steps.pipeline_steps, run_id)
        if any(r["name"] == "look" and r["status"] == "waiting" for r in steps):
            try:
                await asyncio.to_thread(answer_approval, run_id, "look", "approve", via="python")
                return time.time()
            except NotWaitingError:  # the row waits a moment before Prefect shows the flow run Paused
                pass
        await asyncio.sleep(0.05)


async def _run() -> tuple[str, float]:
    from reelflow.runs.pipelines import execute_pipeline_here, prepare_pipeline_run

    prepared = prepare_pipeline_run(_story(), {}, force=True)
    run_id = prepared.run.run_id
    answering = asyncio.create_task(_answer_when_waiting(run_id))
    await execute_pipeline_here(run_id, force=True)
    return run_id, await answering


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processing", type=float, default=5.0)
    parser.add_argument("--limit", type=int, default=2)
    parser.add_argument("--timeline", action="store_true", help="print each step's and job's times too")
    parser.add_argument("--fal-poll-max", type=float, default=None,
                        help="REELFLOW_FAL_POLL_MAX_S: the longest fal status poll interval (default: reelflow's)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="reelflow-pipeline-bench-"))
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REELFLOW_", "FAL_", "SSL_CERT"))}
    os.environ.clear()
    os.environ.update({**base, "REELFLOW_HOME": str(root / "home"), "REELFLOW_PREFECT_PORT": "0",
                       "REELFLOW_FAL_CONCURRENCY": str(args.limit), **prepare_fal_env(port, root / "certs"),
                       **({"REELFLOW_FAL_POLL_MAX_S": str(args.fal_poll_max)} if args.fal_poll_max else {})})
    emulator = _start_emulator(port, root / "certs", args.processing, dict(os.environ))
    from reelflow.orchestration import prefect_server

    try:
        prefect_server.ensure_api()
        from reelflow.orchestration.concurrency import provision_limits

        asyncio.run(provision_limits())
        run_id, answered_at = asyncio.run(_run())
        stats = httpx.get(f"https://127.0.0.1:{port}/_admin/stats", verify=str(root / "certs" / "ca.pem")).json()
    finally:
        emulator.terminate()
        emulator.wait(30)
        prefect_server.stop_server()
    _report(run_id, answered_at, stats, args.processing, args.limit, timeline=args.timeline)


def _report(run_id: str, answered_at: float, stats: dict, processing: float, limit: int, *,
            timeline: bool = False) -> None:
    from reelflow.store import pipeline_steps, repo

    run = repo.get_run(run_id)
    rows = {r["name"]: r for r in pipeline_steps.pipeline_steps(run_id)}
    slots = {e.step: _epoch(e.created_at) for e in repo.events_after(run_id, 0, limit=10_000) if e.kind == "slot"}
    jobs = {j_id: j for j_id, j in stats["jobs"].items()}

    def job(name: str) -> dict:
        return jobs[rows[name]["provider_job_id"]]

    shots = [f"shots[{i}]" for i in range(SHOTS)]
    film = rows["film"]
    concat_s = _epoch(film["finished_at"]) - _epoch(film["started_at"])
    keyframe_s = job("keyframe")["ended_wall"] - job("keyframe")["started_wall"]
    makespan = _epoch(run.finished_at) - _epoch(run.started_at)
    ideal = keyframe_s + math.ceil(SHOTS / limit) * processing + concat_s
    before = [job(n)["started_wall"] - max(_epoch(rows[n]["started_at"]), slots.get(n, 0.0))
              for n in ("keyframe", *shots)]
    look = rows["look"]
    after = [_epoch(look["started_at"]) - job("keyframe")["ended_wall"],
             min(_epoch(rows[n]["started_at"]) for n in shots) - answered_at,
             _epoch(film["started_at"]) - max(job(n)["ended_wall"] for n in shots)]
    overheads = before + after
    if timeline:
        _print_timeline(run, rows, jobs, slots, answered_at)
    print(f"run {run.status}; submits {stats['submits']['by_endpoint']}; max in progress {stats['max_in_progress']} "
          f"(limit {limit})")
    print(f"makespan {makespan:.2f} s   ideal {ideal:.2f} s (keyframe {keyframe_s:.2f} + {math.ceil(SHOTS / limit)} x "
          f"{processing:g} + concat {concat_s:.2f})   ratio {makespan / ideal:.3f} (target <= 1.10)")
    print(f"orchestration overhead per step: median {statistics.median(overheads):.3f} s (target <= 0.3), max "
          f"{max(overheads):.3f} s; start -> provider call {', '.join(f'{v:.3f}' for v in before)}; provider done "
          f"-> next step {', '.join(f'{v:.3f}' for v in after)} (keyframe -> approval, answer -> shots, "
          "last shot -> concat)")


def _print_timeline(run: object, rows: dict, jobs: dict, slots: dict, answered_at: float) -> None:
    start = _epoch(run.started_at)
    moments = [("run started", start), ("run finished", _epoch(run.finished_at)), ("approval answered", answered_at)]
    for name, row in rows.items():
        moments += [(f"{name} started", _epoch(row["started_at"]))] if row["started_at"] else []
        moments += [(f"{name} finished", _epoch(row["finished_at"]))] if row["finished_at"] else []
        if name in slots:
            moments.append((f"{name} slot granted", slots[name]))
        if (job := jobs.get(row["provider_job_id"] or "")) is not None:
            moments += [(f"{name} job started", job["started_wall"]), (f"{name} job ended", job["ended_wall"])]
    for what, moment in sorted(moments, key=lambda item: item[1]):
        print(f"  {moment - start:7.3f}  {what}")


if __name__ == "__main__":
    main()
