"""``/api/runs`` under load (issue 17 section 7): concurrent POSTs and GETs against ``reelflow serve`` on a full store.

    PYTHONPATH=. .venv/bin/python benchmarks/api_load.py [--runs 3052] [--posts 30] [--gets 300] [--rounds 3]

A fresh REELFLOW_HOME gets ``--runs`` finished runs (two steps and a video output each, as ``api_latency.py``
inserts them); then ``reelflow serve --via auto`` (uvicorn, its own process, the background Prefect server)
answers, in this order: ``--gets`` concurrent ``GET /api/runs`` (the default page), the same with ``?limit=200``,
and ``--posts`` concurrent ``POST /api/runs`` (distinct ``local-kenburns`` specs, 320x240, 1 s) fired together
with ``--gets`` concurrent GETs, each phase ``--rounds`` times. Prints p50/p95/max per phase, and how long the
POSTed runs took to complete. Targets: POST p95 <= 300 ms, default-page GET p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FINISHED = ("completed", "failed", "cancelled")


def _isolate(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REELFLOW_"))}
    env.update({"REELFLOW_HOME": str(home), "REELFLOW_PREFECT_PORT": "0", "PYTHONPATH": str(ROOT)})
    os.environ.clear()
    os.environ.update(env)
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return f"p50 {cuts[49]:7.0f} ms   p95 {cuts[94]:7.0f} ms   max {max(values):7.0f} ms   (n={len(values)})"


DROPPED = [0]


async def _timed(client: httpx.AsyncClient, method: str, url: str, **kwargs: object) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except (httpx.RemoteProtocolError, httpx.ReadError):  # a pooled keep-alive connection the server had closed
        DROPPED[0] += 1
        response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    return (time.perf_counter() - started) * 1000, response


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: a cost per request that the machine's load does not skew."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _gets(client: httpx.AsyncClient, count: int, params: dict[str, int]) -> list[float]:
    answers = await asyncio.gather(*(_timed(client, "GET", "/api/runs", params=params) for _ in range(count)))
    bad = [r.status_code for _, r in answers if r.status_code != 200]
    assert not bad, f"GET /api/runs answered {bad[:5]}"
    return [ms for ms, _ in answers]


async def _posts(client: httpx.AsyncClient, count: int, image: str, round_: int) -> tuple[list[float], list[str]]:
    bodies = [{"model": "local-kenburns", "image": image, "prompt": f"load {round_}-{i}", "seed": round_ * 1000 + i,
               "resolution": "320x240", "duration": 1.0, "fps": 8} for i in range(count)]
    answers = await asyncio.gather(*(_timed(client, "POST", "/api/runs", json=b) for b in bodies))
    bad = [(r.status_code, r.text[:200]) for _, r in answers if r.status_code not in (200, 201)]
    assert not bad, f"POST /api/runs answered {bad[:3]}"
    return [ms for ms, _ in answers], [r.json()["run_id"] for _, r in answers]


async def _load(base: str, headers: dict[str, str], args: argparse.Namespace, pid: int) -> None:
    limits = httpx.Limits(max_connections=args.gets + args.posts, max_keepalive_connections=args.gets + args.posts)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600, limits=limits) as client:
        sample = (ROOT / "reelflow" / "assets" / "sample.jpg").read_bytes()
        uploaded = await client.post("/api/uploads", files={"file": ("s.jpg", sample, "image/jpeg")})
        uploaded.raise_for_status()
        image = uploaded.json()["image"]
        await _gets(client, 5, {})
        default, page200, posts, mixed, created = [], [], [], [], []
        cpu = {"default": 0.0, "limit 200": 0.0}
        for round_ in range(args.rounds):
            used = _cpu_s(pid)
            default += await _gets(client, args.gets, {})
            cpu["default"] += _cpu_s(pid) - used
            used = _cpu_s(pid)
            page200 += await _gets(client, args.gets, {"limit": 200})
            cpu["limit 200"] += _cpu_s(pid) - used
            if args.posts:
                (post_ms, ids), get_ms = await asyncio.gather(_posts(client, args.posts, image, round_),
                                                             _gets(client, args.gets, {}))
                posts += post_ms
                mixed += get_ms
                created += ids
        started = time.perf_counter()
        shown: list[str] = []
        while created:
            shown = [(await client.get(f"/api/runs/{run_id}")).json()["status"] for run_id in created]
            if all(status in FINISHED for status in shown) or time.perf_counter() - started > args.settle_s:
                break
            await asyncio.sleep(1.0)
    print(f"GET  /api/runs (default page), {args.gets} at once   {_percentiles(default)}   "
          f"server CPU {cpu['default'] / len(default) * 1000:.1f} ms per request")
    print(f"GET  /api/runs?limit=200, {args.gets} at once       {_percentiles(page200)}   "
          f"server CPU {cpu['limit 200'] / len(page200) * 1000:.1f} ms per request")
    if not args.posts:
        return
    print(f"POST /api/runs, {args.posts} at once (with GETs)     {_percentiles(posts)}")
    print(f"GET  /api/runs while those POSTs ran            {_percentiles(mixed)}")
    counts = {status: shown.count(status) for status in set(shown)}
    print(f"POSTed runs: {counts} ({time.perf_counter() - started:.0f} s after the last POST); "
          f"idle connections closed by the server and asked again: {DROPPED[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3052)
    parser.add_argument("--posts", type=int, default=30, help="0: the GET phases only")
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--via", default="auto", choices=("auto", "local"),
                        help="reelflow serve --via (auto, its default, asks Prefect for a worker per run)")
    parser.add_argument("--settle-s", type=float, default=600.0, help="how long to wait for the POSTed runs to end")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="reelflow-load-"))
    env = _isolate(tmp / "home")
    from benchmarks.api_latency import fill_store

    started = time.perf_counter()
    fill_store(args.runs)
    print(f"store: {args.runs} runs inserted in {time.perf_counter() - started:.1f} s; machine: "
          f"{Path('/proc/loadavg').read_text().split()[:3]} load, {os.cpu_count()} cores")
    port = _free_port()
    log = (tmp / "serve.log").open("wb")
    serve = subprocess.Popen([sys.executable, "-m", "reelflow.cli.main", "serve", "--port", str(port), "--via",
                              args.via], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if serve.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"reelflow serve did not answer; see {log.name}")
            time.sleep(0.2)
        from reelflow.core.api_token import read_api_token

        asyncio.run(_load(base, {"Authorization": f"Bearer {read_api_token()}"}, args, serve.pid))
    finally:
        serve.terminate()
        serve.wait(60)
        subprocess.run([sys.executable, "-m", "reelflow.cli.main", "server", "stop"], env=env, capture_output=True,
                       timeout=60)


if __name__ == "__main__":
    main()
