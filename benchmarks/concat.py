"""``concat_videos`` speed and memory: three clips joined with a crossfade, at two clip lengths.

    .venv/bin/python benchmarks/concat.py [--size 1280x720] [--fps 24] [--seconds 2 8] [--crossfade 0.5]

Why our own frame loop rather than an ffmpeg filter graph: there is no ffmpeg binary here, and PyAV's
filter graphs cannot letterbox, fps-resample and crossfade a list of inputs of different sizes in one
pass; decoding clip by clip keeps only the crossfade's tail in memory. Each length runs in a fresh
process, so its peak RSS (``ru_maxrss``) is its own: if frames were held, the longer clips' peak would
grow with their length; streamed, it stays flat. Prints frames, seconds, output frames per second and peak MiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _render(work: Path, size: tuple[int, int], fps: int, seconds: float) -> list[Path]:
    from reelflow.providers.local_image import procedural_image
    from reelflow.providers.local_motion import render_kenburns

    clips = []
    for index in range(3):
        still = work / f"{index}.png"
        still.write_bytes(procedural_image(f"clip {index}", size[0], size[1], index))
        clip = work / f"{index}.mp4"
        render_kenburns(still, clip, width=size[0], height=size[1], fps=fps, frames=int(seconds * fps), seed=index)
        clips.append(clip)
    return clips


def _concat(clips: list[str], crossfade: float) -> dict[str, float]:
    from reelflow.providers.local_video import concat_videos

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    facts = concat_videos([Path(c) for c in clips], Path(clips[0]).with_name("out.mp4"), crossfade_s=crossfade)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"frames": facts.frames or 0, "duration_s": facts.duration_s or 0.0, "elapsed_s": elapsed,
            "frames_per_s": (facts.frames or 0) / elapsed, "peak_mib": peak / 1024, "rss_before_mib": before / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 8.0])
    parser.add_argument("--crossfade", type=float, default=0.5)
    parser.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_concat(args.child, args.crossfade)))
        return
    width, height = (int(v) for v in args.size.split("x"))
    print(f"3 clips at {width}x{height}, {args.fps} fps, crossfade {args.crossfade:g} s")
    for seconds in args.seconds:
        with tempfile.TemporaryDirectory() as folder:
            clips = _render(Path(folder), (width, height), args.fps, seconds)
            done = subprocess.run([sys.executable, __file__, "--crossfade", str(args.crossfade), "--child",
                                   *map(str, clips)], capture_output=True, text=True, check=True, cwd=ROOT)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {seconds:g} s clips: {row['frames']:.0f} frames ({row['duration_s']:.2f} s) joined in "
              f"{row['elapsed_s']:.2f} s = {row['frames_per_s']:.0f} frames/s; peak RSS {row['peak_mib']:.0f} MiB "
              f"(after imports {row['rss_before_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
