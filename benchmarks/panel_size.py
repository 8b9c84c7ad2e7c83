"""Size of the built web panel (``ui_ext/dist``): raw and gzip-compressed, per file and in total.

    (cd ui_ext && npm ci && npm run build) && .venv/bin/python benchmarks/panel_size.py
"""

from __future__ import annotations

import gzip
from pathlib import Path

DIST = Path(__file__).resolve().parent.parent / "ui_ext" / "dist"


def main() -> None:
    files = sorted(p for p in DIST.rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"{DIST} is empty: build the panel first (cd ui_ext && npm ci && npm run build)")
    total_raw = total_gz = 0
    for path in files:
        data = path.read_bytes()
        packed = len(gzip.compress(data, compresslevel=9))
        total_raw += len(data)
        total_gz += packed
        print(f"{path.relative_to(DIST)!s:40} {len(data) / 1024:8.1f} KiB  gzip {packed / 1024:7.1f} KiB")
    print(f"{'total':40} {total_raw / 1024:8.1f} KiB  gzip {total_gz / 1024:7.1f} KiB")


if __name__ == "__main__":
    main()
