"""Throughput of fal jobs through ``reelflow batch`` under the Prefect limit ``fal``: each batch's makespan against
the ideal ``runs / limit x job time``.

    PYTHONPATH=. .venv/bin/python benchmarks/fal_throughput.py [--batches 10] [--runs 24] [--limit 4]
        [--processing 5.0] [--prefect-db sqlite|postgres] [--sqlite-begin immediate|deferred] [--max-in-flight 24]
        [--timeline]

The stack is the one reelflow starts by default: a fresh REELFLOW_HOME, the background Prefect server (on SQLite
in that home, or on a throwaway PostgreSQL cluster with ``--prefect-db postgres``), the ``fal`` limit provisioned
as ``reelflow setup`` does. Each batch is one ``reelflow batch FILE.jsonl`` subprocess (the CLI entry point, runs
rendered in its process) of ``--runs`` distinct ``wan-2.5-i2v`` items against the HTTPS fal emulator (its own
process; account concurrency far above the limit, so only reelflow's limit caps the jobs in progress).
Makespan = the batch's first job start -> last job end, from the emulator's own timestamps; "stalled" = a
gap of more than twice the job time with fewer jobs in progress than the limit while items still waited.
Afterwards it prints the rows each run added to the Prefect server's tables (what the server had to write).
Target (issue 17): every batch <= 1.10 x ideal, none stalled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulators.fal import free_port, prepare_fal_env  # noqa: E402

PREFECT_TABLES = ("flow_run", "flow_run_state", "task_run", "task_run_state", "log", "artifact",
                  "artifact_collection", "events", "event_resources", "concurrency_limit_v2")


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


def _items(path: Path, count: int, batch: int) -> Path:
    image = str(Path(str(resources.files("reelflow").joinpath("assets/sample.jpg"))))
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps({"model": "wan-2.5-i2v", "image": image, "prompt": f"benchmark {batch}-{i}",
                                  "seed": batch * 1000 + i, "resolution": "480p"}) + "\n")
    return path


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    from tests.support.pg_cluster import pg_cluster

    with pg_cluster() as url:
        yield url


def _prefect_rows(home: Path) -> dict[str, int]:
    """Rows per table of the Prefect server's SQLite database (empty on PostgreSQL)."""
    path = home / "prefect" / "prefect.db"
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in PREFECT_TABLES if t in names}


def _stalls(jobs: list[tuple[float, float]], limit: int, processing_s: float) -> list[tuple[float, float]]:
    """Gaps longer than 2 x the job time in which fewer than ``limit`` jobs ran before the last one started."""
    last_start = max(start for start, _ in jobs)
    points = sorted([(start, 1) for start, _ in jobs] + [(end, -1) for _, end in jobs])
    found, running, since = [], 0, None
    for at, step in points:
        running += step
        if running < limit and since is None:
            since = at
        elif running >= limit and since is not None:
            if at - since > 2 * processing_s and at <= last_start:
                found.append((since, at))
            since = None
    return found


def _one_batch(number: int, args: argparse.Namespace, root: Path, env: dict[str, str], stats_url: str,
               ca: str) -> dict[str, Any]:
    httpx.post(f"{stats_url}/_admin/reset", verify=ca, timeout=30).raise_for_status()
    source = _items(root / f"batch-{number}.jsonl", args.runs, number)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "reelflow.cli.main", "batch", str(source), "--via", "local",
                           "--max-in-flight", str(args.max_in_flight), "--force", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=args.timeout, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError:
        summary = {"counts": {"crashed": args.runs}}
        print(done.stderr[-3000:], file=sys.stderr)
    stats = httpx.get(f"{stats_url}/_admin/stats", verify=ca, timeout=30).json()
    jobs = sorted((j["started_wall"], j["ended_wall"]) for j in stats["jobs"].values() if j["ended_wall"])
    makespan = (max(end for _, end in jobs) - min(start for start, _ in jobs)) if jobs else float("nan")
    ideal = args.runs / args.limit * args.processing
    return {"batch": number, "completed": summary["counts"].get("completed", 0), "submits": stats["submits"]["total"],
            "makespan": makespan, "ideal": ideal, "ratio": makespan / ideal, "wall": wall,
            "max_in_progress": stats["max_in_progress"], "stalls": _stalls(jobs, args.limit, args.processing)
            if jobs else [], "jobs": jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--processing", type=float, default=5.0)
    parser.add_argument("--prefect-db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--sqlite-begin", choices=("immediate", "deferred"), default="immediate",
                        help="how the SQLite Prefect server begins write transactions (deferred = Prefect's default)")
    parser.add_argument("--max-in-flight", type=int, default=24, help="reelflow batch --max-in-flight")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one batch may take")
    parser.add_argument("--timeline", action="store_true", help="print each job's start and end")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="reelflow-fal-bench-"))
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REELFLOW_", "FAL_", "SSL_CERT"))}
    home = root / "home"
    os.environ.clear()
    os.environ.update({**base, "REELFLOW_HOME": str(home), "REELFLOW_PREFECT_PORT": "0",
                       "REELFLOW_FAL_CONCURRENCY": str(args.limit), "PYTHONPATH": str(ROOT),
                       "REELFLOW_PREFECT_SQLITE_BEGIN": args.sqlite_begin, **prepare_fal_env(port, root / "certs")})
    child_env = dict(os.environ)
    emulator = _start_emulator(port, root / "certs", args.processing, child_env)
    ca = str(root / "certs" / "ca.pem")
    from reelflow.orchestration import prefect_server

    results = []
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    try:
        with _database(args.prefect_db) as database_url:
            started = time.perf_counter()
            prefect_server.start_server(database_url=database_url)
            print(f"Prefect server on {args.prefect_db} ready in {time.perf_counter() - started:.1f} s; "
                  f"load average {' '.join(load_before)} on {os.cpu_count()} cores")
            import asyncio

            from reelflow.orchestration.concurrency import provision_limits

            asyncio.run(provision_limits())
            rows_before = _prefect_rows(home)
            print(f"{'batch':>5} {'done':>6} {'submits':>7} {'makespan s':>10} {'ideal s':>7} {'ratio':>6} "
                  f"{'wall s':>7} {'max in progress':>15}  stalls")
            for number in range(1, args.batches + 1):
                result = _one_batch(number, args, root, child_env, f"https://127.0.0.1:{port}", ca)
                results.append(result)
                stalls = ", ".join(f"{b - a:.0f} s" for a, b in result["stalls"]) or "none"
                print(f"{number:>5} {result['completed']:>3}/{args.runs:<2} {result['submits']:>7} "
                      f"{result['makespan']:>10.2f} {result['ideal']:>7.1f} {result['ratio']:>6.3f} "
                      f"{result['wall']:>7.1f} {result['max_in_progress']:>10} (limit {args.limit})  {stalls}",
                      flush=True)
                if args.timeline:
                    first = min(start for start, _ in result["jobs"])
                    for start, end in result["jobs"]:
                        print(f"        job {start - first:7.2f} -> {end - first:7.2f}")
            rows_after = _prefect_rows(home)
    finally:
        emulator.terminate()
        emulator.wait(30)
        prefect_server.stop_server()

    ratios = [r["ratio"] for r in results]
    total = args.runs * len(results)
    stalled = sum(bool(r["stalls"]) for r in results)
    print(f"worst ratio {max(ratios):.3f}, median {sorted(ratios)[len(ratios) // 2]:.3f}; "
          f"batches over 1.10 x ideal: {sum(r > 1.10 for r in ratios)}; stalled: {stalled}; "
          f"completed {sum(r['completed'] for r in results)}/{total}; "
          f"load average now {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if rows_after:
        added = {t: (rows_after.get(t, 0) - rows_before.get(t, 0)) / total for t in rows_after}
        print("Prefect rows written per run: " + ", ".join(f"{t} {n:.1f}" for t, n in added.items() if n))


if __name__ == "__main__":
    main()
