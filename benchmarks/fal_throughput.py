"""Throughput of fal jobs under the Prefect limit ``fal``: how close to ``N / limit x job time`` it gets.

    .venv/bin/python benchmarks/fal_throughput.py [--runs 24] [--limit 4] [--processing 5.0]
        [--processes 1] [--in-flight 0] [--no-pace] [--no-prequeue] [--timeline]

Each run is a real ``video_pipeline`` run (store, Prefect flow and tasks, local storage) of
``wan-2.5-i2v`` against the HTTPS fal emulator (in its own process, account concurrency far above
the limit, so only reelflow's limit caps the jobs in progress). The stack is the one reelflow
starts by default: a fresh REELFLOW_HOME, the background Prefect server on SQLite, and the limit
provisioned as ``reelflow setup`` does. Makespan = first job start -> last job end, from the
emulator's own timestamps. Target (issue 3): makespan / ideal <= 1.08 and never above the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulators.fal import free_port, prepare_fal_env  # noqa: E402


def _start_emulator(port: int, cert_dir: Path, processing_s: float, env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.fal", "--port", str(port), "--cert-dir", str(cert_dir),
         "--processing-s", str(processing_s), "--account-concurrency", "1000"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("FAL_EMULATOR_READY"):
            return process
    raise SystemExit("the fal emulator did not start")


def _specs(count: int, offset: int) -> list[dict[str, Any]]:
    image = str(Path(str(resources.files("reelflow").joinpath("assets/sample.jpg"))))
    return [{"model": "wan-2.5-i2v", "image": image, "prompt": f"benchmark clip {i}", "seed": i,
             "resolution": "480p"} for i in range(offset, offset + count)]


class _Watch:
    """Which runs have started a task, and which wait for a ``fal`` slot (from reelflow's event stream)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.waiting: set[str] = set()
        self.all_waiting = asyncio.Event()
        self.expected = 0

    def __call__(self, run_id: str, kind: str, message: str, progress: float | None) -> None:
        if kind == "step" and message.endswith(" started"):
            self.started.set()
        if kind == "progress" and message.startswith("waiting for a free"):
            self.waiting.add(run_id)
            if len(self.waiting) >= self.expected:
                self.all_waiting.set()


async def _hold_limit(limit: int, held: asyncio.Event, release: asyncio.Event) -> None:
    """Hold every slot of ``fal`` until ``release``, so that all runs are queued before the first job starts."""
    from reelflow.orchestration.concurrency import FAL_LIMIT, hold_slot

    count = 0

    async def one() -> None:
        nonlocal count
        async with hold_slot(FAL_LIMIT):
            count += 1
            if count == limit:
                held.set()
            await release.wait()

    await asyncio.gather(*(one() for _ in range(limit)))


async def _run_all(specs: list[dict[str, Any]], in_flight: int, pace: bool, prequeue: int = 0) -> list[str]:
    """Every spec as a pipeline run, at most ``in_flight`` alive at once (0: no cap).

    ``pace``: flow runs are created one after another (a SQLite Prefect server answers concurrent flow-run
    creations with 503, and Prefect's client then waits 2, 4, 8... s). ``prequeue``: hold that many slots
    (the whole limit) until every run waits for one, then let them go.
    """
    from reelflow.api import arun
    from reelflow.runs import events

    gate = asyncio.Semaphore(in_flight or len(specs))
    one_at_a_time = asyncio.Lock()
    watch = _Watch()
    watch.expected = len(specs)
    events.subscribe(watch)
    held, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold_limit(prequeue, held, release)) if prequeue else None
    if holder is not None:
        await held.wait()

    async def one(spec: dict[str, Any]) -> str:
        async with gate:
            if not pace:
                return (await arun(spec, force=True)).status
            async with one_at_a_time:
                watch.started.clear()
                run = asyncio.create_task(arun(spec, force=True))
                await asyncio.wait([run, asyncio.create_task(watch.started.wait())],
                                   return_when=asyncio.FIRST_COMPLETED)
            return (await run).status

    runs = asyncio.gather(*(one(spec) for spec in specs))
    if holder is not None:
        await watch.all_waiting.wait()
        release.set()
        await holder
    return list(await runs)


def child(specs_json: str, in_flight: int, pace: bool) -> None:
    """One flow process: run its share of the specs and print their statuses."""
    statuses = asyncio.run(_run_all(json.loads(specs_json), in_flight, pace))
    print("STATUSES " + json.dumps(statuses), flush=True)


def _run_processes(specs: list[dict[str, Any]], processes: int, in_flight: int, pace: bool) -> list[str]:
    shares = [specs[i::processes] for i in range(processes)]
    per_process = -(-in_flight // processes) if in_flight else 0
    children = [subprocess.Popen([sys.executable, __file__, "--child", json.dumps(share), "--in-flight",
                                  str(per_process), *([] if pace else ["--no-pace"])], cwd=ROOT,
                                 stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL) for share in shares]
    statuses: list[str] = []
    for process in children:
        out, _ = process.communicate()
        lines = [line for line in out.splitlines() if line.startswith("STATUSES ")]
        statuses += json.loads(lines[-1].removeprefix("STATUSES ")) if lines else ["crashed"]
    return statuses


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = current = 0
    for _, step in points:
        current += step
        best = max(best, current)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--processing", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=1, help="flow processes sharing the runs")
    parser.add_argument("--in-flight", type=int, default=0,
                        help="flow runs alive at once, as a batch's max_in_flight (default 0: all)")
    parser.add_argument("--no-pace", dest="pace", action="store_false",
                        help="start all flow runs at once instead of creating them one after another")
    parser.add_argument("--no-prequeue", dest="prequeue", action="store_false",
                        help="let jobs start as soon as their flow runs get there, not once all are queued")
    parser.add_argument("--timeline", action="store_true", help="print each job's start and end")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.in_flight, args.pace)
        return
    in_flight = args.in_flight
    prequeue = args.limit if args.prequeue and not in_flight and args.processes == 1 else 0

    root = Path(tempfile.mkdtemp(prefix="reelflow-fal-bench-"))
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REELFLOW_", "FAL_", "SSL_CERT"))}
    os.environ.clear()
    os.environ.update({**base, "REELFLOW_HOME": str(root / "home"), "REELFLOW_PREFECT_PORT": "0",
                       "REELFLOW_FAL_CONCURRENCY": str(args.limit), **prepare_fal_env(port, root / "certs")})
    emulator = _start_emulator(port, root / "certs", args.processing, dict(os.environ))
    from reelflow.orchestration import prefect_server

    try:
        started = time.perf_counter()
        prefect_server.ensure_api()
        print(f"Prefect server ready in {time.perf_counter() - started:.1f} s ({os.environ['PREFECT_API_URL']})")
        from reelflow.orchestration.concurrency import provision_limits

        asyncio.run(provision_limits())
        specs = _specs(args.runs, 0)
        wall = time.perf_counter()
        if args.processes == 1:
            statuses = asyncio.run(_run_all(specs, in_flight, args.pace, prequeue))
        else:
            statuses = _run_processes(specs, args.processes, in_flight, args.pace)
        wall = time.perf_counter() - wall
        stats = httpx.get(f"https://127.0.0.1:{port}/_admin/stats", verify=str(root / "certs" / "ca.pem")).json()
    finally:
        emulator.terminate()
        emulator.wait(30)
        prefect_server.stop_server()

    jobs = [(j["started_wall"], j["ended_wall"]) for j in stats["jobs"].values() if j["ended_wall"]]
    makespan = max(end for _, end in jobs) - min(start for start, _ in jobs)
    ideal = args.runs / args.limit * args.processing
    idle = args.limit * makespan - sum(end - start for start, end in jobs)
    print(f"runs completed: {statuses.count('completed')}/{args.runs} (submits seen: {stats['submits']['total']}; "
          f"flow processes: {args.processes}; flow runs in flight: {in_flight or 'all'}; "
          f"flow starts {'paced' if args.pace else 'all at once'}; "
          f"{'all runs queued before the first job' if prequeue else 'jobs start as runs arrive'}; "
          f"wall incl. flow start-up {wall:.1f} s)")
    print(f"makespan {makespan:.2f} s   ideal {ideal:.2f} s   ratio {makespan / ideal:.3f}   "
          f"max in progress {stats['max_in_progress']} (from timestamps {_max_overlap(jobs)}; limit {args.limit})")
    if args.timeline:
        first = min(start for start, _ in jobs)
        for start, end in sorted(jobs):
            print(f"  job {start - first:7.2f} -> {end - first:7.2f}  ABS {first:.3f}")
    print(f"idle slot time {idle:.2f} s over {args.runs - args.limit} hand-offs "
          f"({idle / max(1, args.runs - args.limit):.3f} s each)")


if __name__ == "__main__":
    main()
