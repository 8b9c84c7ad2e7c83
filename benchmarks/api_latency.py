"""Latency of ``GET /api/runs`` with 10,000 runs in the store, over real HTTP (uvicorn on 127.0.0.1).

    .venv/bin/python benchmarks/api_latency.py [--runs 10000] [--requests 300]

Rows are inserted straight into a fresh store in a temporary REELFLOW_HOME (each run with two steps and a
video output, like a finished local run); then each query shape is requested ``--requests`` times by one
client and p50/p95/p99 are printed. Target (issue 7): report the p95 of the default page.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

SHAPES = {
    "default page (limit 20)": {},
    "limit 100": {"limit": 100},
    "deep page (offset 5000)": {"offset": 5000},
    "filtered (status + model)": {"status": "failed", "model": "local-kenburns"},
}


def _isolate(home: Path) -> None:
    for name in [n for n in os.environ if n.startswith(("PREFECT_", "REELFLOW_"))]:
        del os.environ[name]
    os.environ["REELFLOW_HOME"] = str(home)
    os.environ["PREFECT_HOME"] = str(home / "prefect")


def fill_store(count: int) -> None:
    from sqlalchemy import insert

    from reelflow.store.db import session_scope
    from reelflow.store.models import Output, Run, Step

    start = datetime.now(UTC) - timedelta(days=30)
    runs, steps, outputs = [], [], []
    for i in range(count):
        run_id = uuid.uuid4().hex
        created = start + timedelta(seconds=i * 60)
        status = "failed" if i % 10 == 0 else "completed"
        runs.append({"id": run_id, "idempotency_key": uuid.uuid4().hex * 2, "model_id": "local-kenburns",
                     "backend": "local", "status": status, "spec": {"model": "local-kenburns", "prompt": f"run {i}"},
                     "forced": False, "progress": 1.0, "cost_usd": 0.0, "created_at": created,
                     "started_at": created, "finished_at": created + timedelta(seconds=3),
                     "error": "provider fell over" if status == "failed" else None})
        for name in ("i2v_local", "cache_r2:video"):
            steps.append({"run_id": run_id, "name": name, "backend": "local", "status": "completed", "attempts": 1,
                          "started_at": created, "finished_at": created + timedelta(seconds=2)})
        sha = uuid.uuid4().hex * 2
        outputs.append({"run_id": run_id, "role": "video", "key": f"videos/{sha[:2]}/{sha}.mp4",
                        "path": f"/tmp/{sha}.mp4", "url": None, "sha256": sha, "bytes": 123456,
                        "content_type": "video/mp4", "width": 854, "height": 480, "fps": 24.0, "frames": 72,
                        "duration_s": 3.0})
    with session_scope() as s:
        s.execute(insert(Run), runs)
        s.execute(insert(Step), steps)
        s.execute(insert(Output), outputs)


def serve() -> tuple[str, object]:
    import uvicorn

    from reelflow.web import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the API did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def measure(base: str, params: dict, requests: int) -> list[float]:
    import httpx

    timings = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(5):
            client.get("/api/runs", params=params).raise_for_status()
        for _ in range(requests):
            start = time.perf_counter()
            response = client.get("/api/runs", params=params)
            timings.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
    return timings


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelflow-bench-") as tmp:
        _isolate(Path(tmp))
        started = time.perf_counter()
        fill_store(args.runs)
        print(f"store: {args.runs} runs inserted in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        base, server = serve()
        print(f"GET /api/runs, {args.runs} runs in the store, {args.requests} sequential requests per shape")
        print(f"{'query':28} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for label, params in SHAPES.items():
            timings = measure(base, params, args.requests)
            print(f"{label:28} {percentile(timings, 50):8.1f} {percentile(timings, 95):8.1f} "
                  f"{percentile(timings, 99):8.1f}")
        server.should_exit = True


if __name__ == "__main__":
    main()
