"""Deployment latency and throughput on the local stack, on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/submit_latency.py [--database sqlite|postgresql|both] [--samples 10] [--batch 50]

For each database, in a fresh REELFLOW_HOME: ``reelflow up`` (Prefect server, `reelflow setup`, workers,
panel) until "all health checks green"; then, from a plain script with no PREFECT_* variables (it finds the
server through REELFLOW_HOME, as a user's script does), ``reelflow.submit`` -> returned and -> the flow run
Running on a worker, one run at a time (median of ``--samples``); then a batch of ``--batch`` local-model
items through the ``video-pipeline`` deployment, checking afterwards that no concurrency slot is still taken and no flow
run is left unfinished. Targets (issue 6): submit -> running <= 4 s median; the batch completes, no slot
leaked. Issue 13: submit -> returned <= 0.5 s plus the input's validation and storage. PostgreSQL runs in a
throwaway cluster (tests/support/pg_cluster.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UP_TIMEOUT_S = 300.0


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REELFLOW_"))}
    return {**env, "REELFLOW_HOME": str(home), "REELFLOW_PREFECT_PORT": "0", "COLUMNS": "200", **extra}


def _up(home: Path, workers: int, limit: int, database_url: str | None,
        panel: bool) -> tuple[subprocess.Popen[str], str, float]:
    args = [sys.executable, "-m", "reelflow.cli.main", "up", "--panel-port", "0", "--workers", str(workers),
            "--worker-limit", str(limit)] + (["--database-url", database_url] if database_url else []) + (
            [] if panel else ["--no-panel"])
    started = time.monotonic()
    process = subprocess.Popen(args, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL, cwd=ROOT)
    assert process.stdout is not None
    lines: list[str] = []
    api_url, green = None, None
    for line in process.stdout:
        lines.append(line)
        if "all health checks green" in line:
            green = time.monotonic() - started
        if found := re.search(r"export PREFECT_API_URL=(\S+)", line):
            api_url = found.group(1)
        if (api_url and green is not None) or time.monotonic() - started > UP_TIMEOUT_S:
            break
    if not api_url or green is None:
        process.kill()
        raise SystemExit("reelflow up did not come up:\n" + "".join(lines))
    print("".join(line for line in lines if "healthy" in line).rstrip())
    return process, api_url, green


def _down(process: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    return time.monotonic() - started


def measure(samples: int, batch: int, in_flight: int) -> dict:
    """Runs in a child process with no PREFECT_* variables: Prefect is imported only after the first submit,
    as in a user's script that imports nothing but reelflow."""
    import asyncio
    from uuid import UUID

    import reelflow

    image = str(ROOT / "reelflow" / "assets" / "sample.jpg")
    small = {"model": "local-kenburns", "image": image, "duration": 0.5, "fps": 8, "resolution": "96x64"}
    submitted_at = time.time()
    first = time.monotonic()
    first_id = reelflow.submit({**small, "seed": 999}, force=True, via="deployment")
    returned = [time.monotonic() - first]

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.settings import get_current_settings

    from flows.batch_pipeline import batch_pipeline

    api_url = get_current_settings().api.url

    async def started_after(flow_run_id: str, submitted_at: float) -> tuple[float, dict[str, float]]:
        """Seconds to Running, and its parts from the run's state history: submit -> Scheduled (reelflow.submit),
        -> Pending (the worker's poll and pick-up), -> Running (worker submit, process start, flow import)."""
        deadline = time.monotonic() + 300
        async with get_client() as client:
            while time.monotonic() < deadline:
                flow_run = await client.read_flow_run(UUID(flow_run_id))
                if flow_run.start_time is not None:
                    states = {s.type.value: s.timestamp.timestamp() for s in
                              reversed(await client.read_flow_run_states(UUID(flow_run_id)))}
                    running = flow_run.start_time.timestamp()
                    scheduled, pending = states.get("SCHEDULED", submitted_at), states.get("PENDING", running)
                    return running - submitted_at, {"submit": scheduled - submitted_at, "pick_up": pending - scheduled,
                                                    "start": running - pending}
                await asyncio.sleep(0.05)
        raise SystemExit(f"flow run {flow_run_id} did not start within 300 s")

    latencies, parts = [], []
    for index in range(samples):
        if index:
            submitted_at = time.time()
            started = time.monotonic()
            run_id = reelflow.submit({**small, "seed": 1000 + index}, force=True, via="deployment")
            returned.append(time.monotonic() - started)
        else:
            run_id = first_id
        flow_run_id = reelflow.get(run_id).prefect_flow_run_id or ""
        latency, breakdown = asyncio.run(started_after(flow_run_id, submitted_at))
        latencies.append(latency)
        parts.append(breakdown)
        assert reelflow.wait(run_id, timeout=300).status == "completed"

    async def leftovers() -> tuple[dict[str, int], int]:
        async with get_client() as client:
            slots = {g.name: g.active_slots for g in await client.read_global_concurrency_limits()}
            unfinished = await client.count_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING, StateType.CANCELLING]))))
        return slots, unfinished

    prompts = [f"take {n}" for n in range(batch)]
    started = time.monotonic()
    defaults = {k: v for k, v in small.items() if k != "image"}
    state = asyncio.run(batch_pipeline(source=[image], prompts=prompts, defaults=defaults, via="deployment",
                                       max_in_flight=in_flight, return_state=True))
    batch_s = time.monotonic() - started
    summary = asyncio.run(state.aresult(raise_on_failure=False))
    if not isinstance(summary, dict):
        raise SystemExit(f"the batch flow ended {state.name}: {summary!r}")
    slots, unfinished = asyncio.run(leftovers())
    errors = [row["error"] for row in summary["items"] if row["status"] != "completed"]
    return {"latencies": latencies, "returned": returned, "api_url": api_url, "parts": parts,
            "batch_s": batch_s, "batch_counts": summary["counts"],
            "slots": slots, "unfinished_flow_runs": unfinished, "batch_errors": errors}


def run_one(database: str, samples: int, batch: int, in_flight: int, workers: int, limit: int,
            panel: bool) -> dict:
    from tests.support.pg_cluster import pg_cluster

    home = Path(tempfile.mkdtemp(prefix=f"reelflow-bench-{database}-"))
    cluster = pg_cluster() if database == "postgresql" else None
    database_url = cluster.__enter__() if cluster else None
    try:
        process, api_url, green_s = _up(home, workers, limit, database_url, panel)
        try:
            child = subprocess.run([sys.executable, __file__, "--measure", "--samples", str(samples), "--batch",
                                    str(batch), "--in-flight", str(in_flight)], env=_env(home),
                                   cwd=ROOT,
                                   capture_output=True, text=True, timeout=3600)
            lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
            if child.returncode != 0 or not lines:
                raise SystemExit(f"measurement failed:\n{child.stdout[-4000:]}\n{child.stderr[-4000:]}")
            result = json.loads(lines[-1].removeprefix("RESULT "))
            if result["api_url"] != api_url:
                raise SystemExit(f"the script's Prefect used {result['api_url']}, not the stack's {api_url}")
        finally:
            down_s = _down(process)
    finally:
        if cluster:
            cluster.__exit__(None, None, None)
        shutil.rmtree(home, ignore_errors=True)
    return {"database": database, "up_green_s": green_s, "down_s": down_s, **result}


def report(row: dict) -> None:
    lat = row["latencies"]
    print(f"\n== {row['database']}")
    print(f"reelflow up -> all health checks green: {row['up_green_s']:.1f} s; "
          f"Ctrl-C -> stopped: {row['down_s']:.1f} s")
    ret = row["returned"]
    print(f"submit -> returned (plain script): first {ret[0]:.2f} s, later median "
          f"{statistics.median(ret[1:] or ret):.2f} s (target <= 0.5 s plus the input's storage)")
    print(f"submit -> running on a worker: median {statistics.median(lat):.2f} s, min {min(lat):.2f}, "
          f"max {max(lat):.2f} (n={len(lat)}; target <= 4 s)")
    if parts := row.get("parts"):
        print("  medians: " + ", ".join(f"{name} {statistics.median(p[name] for p in parts):.2f} s"
                                        for name in ("submit", "pick_up", "start")))
    print(f"batch of {sum(row['batch_counts'].values())} local items: {row['batch_s']:.1f} s, {row['batch_counts']}; "
          f"slots still taken: {sum(row['slots'].values())} {row['slots']}; "
          f"unfinished flow runs: {row['unfinished_flow_runs']}")
    for error in row["batch_errors"]:
        print(f"  item error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=8, help="Batch items queued or running at once.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-limit", type=int, default=4)
    parser.add_argument("--no-panel", action="store_true", help="Start `reelflow up` without the panel.")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print("RESULT " + json.dumps(measure(args.samples, args.batch, args.in_flight)), flush=True)
        return
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for database in databases:
        report(run_one(database, args.samples, args.batch, args.in_flight, args.workers, args.worker_limit,
                       not args.no_panel))


if __name__ == "__main__":
    main()
