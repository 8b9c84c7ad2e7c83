"""``/api/runs`` under load (issue 17 section 7): concurrent POSTs and GETs against ``reelflow serve`` on a full store.

    PYTHONPATH=. .venv/bin/python benchmarks/api_load.py [--runs 3052] [--posts 30] [--gets 300] [--rounds 3]

A fresh REELFLOW_HOME gets ``--runs`` finished runs (two steps and a video output each, as ``api_latency.py``
inserts them); then ``reelflow serve --via auto`` (uvicorn, its own process, the background Prefect server)
answers, each round: ``--gets`` concurrent ``GET /api/runs`` (the default page); the same with ``?limit=200``;
``--posts`` concurrent ``POST /api/runs`` alone (distinct ``local-kenburns`` specs, 320x240, 1 s: the issue's
probe); once those runs have ended, ``--posts`` POSTs fired together with ``--gets`` GETs. Prints p50/p95/max
per phase, the CPU the server and this load generator spent per request, and how the POSTed runs ended.
Targets: POST p95 <= 300 ms, default-page GET p95 <= 1 s.

Each request has its own keep-alive connection, opened before the phase's clock starts, and is written and
read over raw asyncio streams: the generator shares the server's 2 cores, so it must cost little (its CPU per
request is printed beside the figures).
"""


from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FINISHED = ("completed", "failed", "cancelled")
T = TypeVar("T")


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


class Connection:
    """One keep-alive HTTP/1.1 connection over asyncio streams: a load generator that costs a few tens of
    microseconds of CPU per request (httpx costs milliseconds, on the same 2 cores as the server it measures)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> None:
        self.reader, self.writer, self.head = reader, writer, head

    @classmethod
    async def open(cls, port: int, token: str) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n".encode()
        return cls(reader, writer, head)

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        extra = b"Content-Type: application/json\r\n" if body else b""
        self.writer.write(b"%s %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s"
                          % (method.encode(), target.encode(), self.head, extra, len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        fields = {name.strip().lower(): value.strip() for name, value in headers.items()}
        if fields.get(b"transfer-encoding") == b"chunked":
            chunks = []
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                chunks.append(await self.reader.readexactly(size + 2))
            await self.reader.readuntil(b"\r\n")
            return status, b"".join(chunk[:-2] for chunk in chunks)
        return status, await self.reader.readexactly(int(fields.get(b"content-length", b"0")))

    def close(self) -> None:
        self.writer.close()


async def _connections(port: int, token: str, count: int) -> list[Connection]:
    """Opened before a phase's clock starts, so a phase measures answers, not TCP handshakes."""
    return list(await asyncio.gather(*(Connection.open(port, token) for _ in range(count))))


async def _timed(connection: Connection, method: str, target: str, body: bytes = b"") -> tuple[float, int, bytes]:
    started = time.perf_counter()
    status, answer = await connection.request(method, target, body)
    return (time.perf_counter() - started) * 1000, status, answer


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: a cost per request that the machine's load does not skew."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _gets(connections: list[Connection], *, target: str) -> list[float]:
    answers = await asyncio.gather(*(_timed(c, "GET", target) for c in connections))
    bad = [status for _, status, _ in answers if status != 200]
    assert not bad, f"GET {target} answered {bad[:5]}"
    return [ms for ms, _, _ in answers]


async def _posts(connections: list[Connection], *, image: str, label: str) -> tuple[list[float], list[str]]:
    bodies = [json.dumps({"model": "local-kenburns", "image": image, "prompt": f"load {label}-{i}",
                          "seed": i, "resolution": "320x240", "duration": 1.0, "fps": 8}).encode()
              for i in range(len(connections))]
    answers = await asyncio.gather(*(_timed(connection, "POST", "/api/runs", body)
                                     for connection, body in zip(connections, bodies, strict=True)))
    bad = [(status, text[:200]) for _, status, text in answers if status not in (200, 201)]
    assert not bad, f"POST /api/runs answered {bad[:3]}"
    return [ms for ms, _, _ in answers], [json.loads(text)["run_id"] for _, _, text in answers]


@dataclass
class Phase:
    """One probe's answer times, and the CPU seconds the server and this load generator spent on its requests."""

    name: str
    ms: list[float] = field(default_factory=list)
    requests: int = 0
    server_cpu_s: float = 0.0
    generator_cpu_s: float = 0.0

    def line(self) -> str:
        cpu = (f"   CPU per request: server {self.server_cpu_s / self.requests * 1000:4.1f} ms, load generator "
               f"{self.generator_cpu_s / self.requests * 1000:4.2f} ms" if self.requests else "")
        return f"{self.name:<38} {_percentiles(self.ms)}{cpu}"


class Probe:
    """Phases measured against one server process (``pid``); each opens its connections before its clock starts."""

    def __init__(self, pid: int, port: int, token: str) -> None:
        self.pid, self.port, self.token = pid, port, token
        self.phases: dict[str, Phase] = {}
        self.windows: list[tuple[str, float, float]] = []

    def phase(self, name: str) -> Phase:
        return self.phases.setdefault(name, Phase(name))

    async def measure(self, name: str, counts: list[int], run: Callable[..., Awaitable[T]]) -> T:
        """``run(*groups)`` with one group of fresh connections per count; its CPU is booked to phase ``name``."""
        groups = [await _connections(self.port, self.token, count) for count in counts]
        phase = self.phase(name)
        server, generator, began = _cpu_s(self.pid), time.process_time(), time.time()
        try:
            return await run(*groups)
        finally:
            self.windows.append((name, began, time.time()))
            phase.server_cpu_s += _cpu_s(self.pid) - server
            phase.generator_cpu_s += time.process_time() - generator
            phase.requests += sum(counts)
            for group in groups:
                for connection in group:
                    connection.close()


async def _settle(client: httpx.AsyncClient, run_ids: list[str], patience_s: float) -> tuple[dict[str, int], float]:
    """Wait until every run has finished (or ``patience_s`` passed): how many ended in which state, and when."""
    started = time.perf_counter()
    shown: list[str] = []
    while run_ids:
        shown = [(await client.get(f"/api/runs/{run_id}")).json()["status"] for run_id in run_ids]
        if all(status in FINISHED for status in shown) or time.perf_counter() - started > patience_s:
            break
        await asyncio.sleep(1.0)
    return {status: shown.count(status) for status in sorted(set(shown))}, time.perf_counter() - started


async def _load(base: str, port: int, token: str, args: argparse.Namespace, pid: int) -> None:
    probe = Probe(pid, port, token)
    settled: list[str] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client:
        sample = (ROOT / "reelflow" / "assets" / "sample.jpg").read_bytes()
        uploaded = await client.post("/api/uploads", files={"file": ("s.jpg", sample, "image/jpeg")})
        uploaded.raise_for_status()
        image = uploaded.json()["image"]
        for _ in range(5):
            (await client.get("/api/runs")).raise_for_status()
        for round_ in range(args.rounds):
            for name, target in (("GET  /api/runs (default page)", "/api/runs"),
                                 ("GET  /api/runs?limit=200", "/api/runs?limit=200")):
                probe.phase(name).ms += await probe.measure(name, [args.gets], partial(_gets, target=target))
            if not args.posts:
                continue
            alone = probe.phase("POST /api/runs alone")
            ms, ids = await probe.measure(alone.name, [args.posts], partial(_posts, image=image,
                                                                             label=f"{round_}-alone"))
            alone.ms += ms
            counts, waited = await _settle(client, ids, args.settle_s)
            settled.append(f"alone, round {round_ + 1}: {counts}, {waited:.0f} s after the POSTs")

            async def together(posting: list[Connection], getting: list[Connection],
                               label: str = f"{round_}-mixed") -> tuple[tuple[list[float], list[str]], list[float]]:
                posted, got = await asyncio.gather(_posts(posting, image=image, label=label),
                                                   _gets(getting, target="/api/runs"))
                return posted, got

            (ms, ids), get_ms = await probe.measure("POST /api/runs with GETs", [args.posts, args.gets], together)
            probe.phase("POST /api/runs with GETs").ms += ms
            probe.phase("GET  /api/runs while those POSTs ran").ms += get_ms
            counts, waited = await _settle(client, ids, args.settle_s)
            settled.append(f"with GETs, round {round_ + 1}: {counts}, {waited:.0f} s after the POSTs")
    for phase in probe.phases.values():
        print(phase.line())
    for line in settled:
        print(f"POSTed runs, {line}")
    if args.sample_stacks:
        for name, began, ended in probe.windows:
            print(f"sampled window: {began:.3f} {ended:.3f} {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3052)
    parser.add_argument("--posts", type=int, default=30, help="0: the GET phases only")
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--via", default="auto", choices=("auto", "local"),
                        help="reelflow serve --via (auto, its default, asks Prefect for a worker per run)")
    parser.add_argument("--sample-stacks", type=Path, help="run the server under benchmarks/sampled_serve.py, "
                        "its threads' stacks sampled into this file (prints each phase's time window)")
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
    command = [sys.executable, "-m", "reelflow.cli.main"]
    if args.sample_stacks:
        command = [sys.executable, str(ROOT / "benchmarks" / "sampled_serve.py"), str(args.sample_stacks.resolve())]
    serve = subprocess.Popen([*command, "serve", "--port", str(port), "--via", args.via], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
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

        token = read_api_token()
        assert token is not None, "reelflow serve wrote no API token"
        asyncio.run(_load(base, port, token, args, serve.pid))
    finally:
        serve.terminate()
        serve.wait(60)
        subprocess.run([sys.executable, "-m", "reelflow.cli.main", "server", "stop"], env=env, capture_output=True,
                       timeout=60)


if __name__ == "__main__":
    main()
