"""What opening an up-to-date store costs: ``make_engine`` (connect + the schema check every CLI call makes),
as the first call in a fresh interpreter (what each CLI command pays; imports not counted) and repeated in
one process; medians, wall and CPU time. Run it with the tree to measure on PYTHONPATH, e.g. the code before
Alembic (``git archive c2078f6 | tar -x -C /tmp/before``) and this one:

    PYTHONPATH=/tmp/before .venv/bin/python benchmarks/store_open.py
    PYTHONPATH=$PWD .venv/bin/python benchmarks/store_open.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed_open(url: str) -> tuple[float, float]:
    from reelflow.store.db import make_engine

    wall, cpu = time.perf_counter(), time.process_time()
    make_engine(url).dispose()
    return time.perf_counter() - wall, time.process_time() - cpu


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=21)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import reelflow.store.db  # noqa: F401  (imports are not what is measured)

        wall, cpu = _timed_open(args.child)
        print(json.dumps({"wall": wall, "cpu": cpu, "alembic": "alembic" in sys.modules}))
        return
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite:///{Path(home) / 'reelflow.db'}"
        _timed_open(url)  # creates the store; every sample below opens it up to date
        firsts = [json.loads(subprocess.run([sys.executable, __file__, "--child", url], capture_output=True,
                                            text=True, check=True, env=os.environ).stdout)
                  for _ in range(args.processes)]
        repeated = [_timed_open(url) for _ in range(args.samples)]
    print(f"first make_engine in a fresh process ({args.processes}): wall {_ms([f['wall'] for f in firsts])}, "
          f"CPU {_ms([f['cpu'] for f in firsts])}; Alembic imported: {any(f['alembic'] for f in firsts)}")
    print(f"make_engine repeated in one process ({args.samples}): wall {_ms([w for w, _ in repeated])}, "
          f"CPU {_ms([c for _, c in repeated])}")


if __name__ == "__main__":
    main()
