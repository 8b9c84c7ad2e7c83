"""``reelflow serve`` with a wall-clock stack sampler, for ``api_load.py --sample-stacks`` (benchmarks only).

    python benchmarks/sampled_serve.py OUT.txt serve --port 8000 ...

Every ``INTERVAL_S`` each thread's Python stack is appended to OUT.txt as ``<unix time>\\t<thread name>\\t<frames
outermost first, ';'-separated>``: where requests wait (locks, the thread pool, the GIL's turn) shows as well as
where they compute, which a CPU profiler does not show. ``summarise`` reads it back for a time window.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path

INTERVAL_S = 0.005
DEPTH = 60


def _frames(frame: object) -> str:
    names = []
    while frame is not None and len(names) < DEPTH:
        code = frame.f_code  # type: ignore[attr-defined]
        names.append(f"{Path(code.co_filename).name}:{code.co_name}")
        frame = frame.f_back  # type: ignore[attr-defined]
    return ";".join(reversed(names))


def _sample(out: Path) -> None:
    me = threading.get_ident()
    with out.open("a", buffering=1 << 20) as sink:
        while True:
            now = time.time()
            names = {thread.ident: thread.name for thread in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    sink.write(f"{now:.4f}\t{names.get(ident, ident)}\t{_frames(frame)}\n")
            sink.flush()
            time.sleep(INTERVAL_S)


def summarise(path: Path, since: float, until: float, contains: str, top: int = 25) -> list[tuple[str, int]]:
    """The frames most often on the stacks (sampled between ``since`` and ``until``) that contain ``contains``."""
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stamp, _, frames = line.split("\t", 2)
        if since <= float(stamp) <= until and contains in frames:
            counts.update(set(frames.split(";")))
    return counts.most_common(top)


def main() -> None:
    out = Path(sys.argv[1])
    threading.Thread(target=_sample, args=(out,), name="stack-sampler", daemon=True).start()
    from reelflow.cli.main import app

    sys.argv = ["reelflow", *sys.argv[2:]]
    app()


if __name__ == "__main__":
    main()
