"""Benchmark: cache a 512 MiB video from an HTTP URL into S3 (moto server) by the streaming path, vs boto3.

moto and the source server each run in their own process; every measured transfer runs in a fresh child
process that reports its peak RSS growth (VmHWM after resetting it, cross-checked by sampling VmRSS).
Modes, interleaved per round (medians reported):

* ``boto3``      ``client.upload_file`` of the file from disk (managed transfer, its defaults: 8 MiB parts,
                 10 threads);
* ``url``        ``R2Storage.put_url(run_key=...)``, what ``cache_r2`` does with a provider URL: HEAD the run's
                 key ``runs/<run_id>/video.mp4``, then the streamed HTTP body, hashed on the way by a
                 ``HashingReader``, goes straight into boto3's managed multipart upload to it (12 MiB parts,
                 4 threads);
* ``url-known``  ``put_url(expected_sha256=...)``: HEAD, then the same stream to the content key, its hash
                 checked before the upload completes;
* ``file``       ``put_file``: hash the file, HEAD, then boto3's managed upload of the file by its path (as
                 ``upload_file`` does) to the content key.

moto keeps bodies in RAM here (``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE``) so its temp-file spooling adds no
disk noise to either side; pass ``--moto-disk`` for moto's default.

    .venv/bin/python -m benchmarks.cache_r2 [--size-mib 512] [--rounds 5] [--moto-disk]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blocks.r2_storage import R2Bucket  # noqa: E402
from reelflow.storage.keys import RunKey  # noqa: E402
from tests.support.s3_server import KEY_ID, SECRET, free_port, s3_client, spawn_moto, wait_for_port  # noqa: E402

BUCKET = "bench"
MiB = 1024 * 1024
MODES = ("boto3", "url", "url-known", "file")


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class PeakRss:
    """Peak RSS growth of this process while inside the ``with`` block, in MiB."""

    def __enter__(self) -> PeakRss:
        self.before = status_kib("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.sampled = self.before
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.sampled = max(self.sampled, status_kib("VmRSS"))
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        peak = max(self.sampled, status_kib("VmHWM") if self.hwm_reset else 0)
        self.growth_mib = (peak - self.before) / 1024


def child(mode: str, endpoint: str, source: str, path: Path, sha256: str) -> dict[str, Any]:
    storage = R2Bucket.for_s3_compatible(endpoint, BUCKET, KEY_ID, SECRET).storage()
    size = path.stat().st_size
    cpu_before = os.times()
    with PeakRss() as rss:
        started = time.perf_counter()
        if mode == "boto3":
            key = f"boto3/{time.time_ns()}.mp4"
            storage.client.upload_file(str(path), BUCKET, key, ExtraArgs={"ContentType": "video/mp4"})
        elif mode == "file":
            key = storage.put_file(path, "video/mp4").key
        elif mode == "url-known":
            key = storage.put_url(source, content_type="video/mp4", filename="bench.mp4", expected_sha256=sha256).key
        else:
            run_key = RunKey(uuid.uuid4().hex, "video")
            stored = storage.put_url(source, content_type="video/mp4", filename="bench.mp4", run_key=run_key)
            assert stored.sha256 == sha256, "the hash computed on the way is wrong"
            key = stored.key
        elapsed = time.perf_counter() - started
    cpu_after = os.times()
    cpu_s = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
    assert storage.client.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == size
    storage.client.delete_object(Bucket=BUCKET, Key=key)
    return {"mode": mode, "seconds": elapsed, "mib_s": size / MiB / elapsed, "rss_growth_mib": rss.growth_mib,
            "cpu_s": cpu_s}


def run_child(mode: str, endpoint: str, source: str, path: Path, sha256: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.cache_r2", "--child", mode, endpoint, source,
                           str(path), sha256], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_file(path: Path, size_mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(size_mib):
            block = os.urandom(MiB)
            digest.update(block)
            handle.write(block)
        handle.flush()
        os.fsync(handle.fileno())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--moto-disk", action="store_true")
    parser.add_argument("--child", nargs=5, metavar=("MODE", "ENDPOINT", "SOURCE", "PATH", "SHA256"))
    args = parser.parse_args()
    if args.child:
        mode, endpoint, source, path, sha256 = args.child
        print(json.dumps(child(mode, endpoint, source, Path(path), sha256)))
        return
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as folder, spawn_moto(in_memory=not args.moto_disk) as endpoint:
        path = Path(folder) / "bench.mp4"
        sha256 = make_file(path, args.size_mib)
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "tests.support.s3_server", str(path), str(port)], cwd=ROOT)
        try:
            wait_for_port(port)
            source = f"http://127.0.0.1:{port}/{path.name}"
            for _ in range(args.rounds):
                for mode in MODES:
                    results[mode].append(run_child(mode, endpoint, source, path, sha256))
        finally:
            server.terminate()
            server.wait()
    report(results, args.size_mib)


def report(results: dict[str, list[dict[str, Any]]], size_mib: int) -> None:
    """Per mode: median throughput, and the median of per-round ratios to the boto3 run of the same round
    (adjacent in time, so load from other processes on the machine mostly cancels out)."""
    print(f"{size_mib} MiB video/mp4; moto S3 and the source server in their own processes; "
          f"{len(results['boto3'])} rounds")
    base = results["boto3"]
    for mode, runs in results.items():
        speeds = ", ".join(f"{r['mib_s']:.0f}" for r in runs)
        ratio = statistics.median(r["mib_s"] / b["mib_s"] for r, b in zip(runs, base, strict=True))
        rss = max(r["rss_growth_mib"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        print(f"  {mode:9s} {statistics.median(r['mib_s'] for r in runs):6.1f} MiB/s  ratio vs boto3 {ratio:.2f}"
              f"  peak RSS growth {rss:5.1f} MiB  CPU {cpu:5.2f} s  (MiB/s per round: {speeds})")


if __name__ == "__main__":
    main()
