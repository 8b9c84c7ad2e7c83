"""Size of the built web panel (``ui_ext/dist``): raw and gzip-compressed, per file and in total, and its JavaScript
against issue 15's budget (150 KiB gzip for every .js the panel ships, lazy chunks included). ``docs-assets/`` is
Swagger UI for the API's /docs, not the panel: it is listed but left out of the budget. Exits 1 when over budget.

    (cd ui_ext && npm ci && npm run build) && .venv/bin/python benchmarks/panel_size.py
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

DIST = Path(__file__).resolve().parent.parent / "ui_ext" / "dist"
BUDGET_KIB = 150.0
NOT_PANEL = "docs-assets"
# What index.html loads itself, and the static imports (not import("…")) of a built chunk.
ENTRY = re.compile(r'<(?:script[^>]*\bsrc|link[^>]*\brel="modulepreload"[^>]*\bhref)="/([^"]+\.js)"')
STATIC_IMPORT = re.compile(r'(?:\bfrom|\bimport)\s*"\./([^"]+\.js)"')


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def is_panel_js(path: Path) -> bool:
    return path.suffix == ".js" and path.relative_to(DIST).parts[0] != NOT_PANEL


def first_load(dist: Path) -> list[Path]:
    """The .js files a browser fetches before the panel's first paint: index.html's scripts and what they import."""
    index = dist / "index.html"
    todo = [dist / name for name in ENTRY.findall(index.read_text())]
    seen: list[Path] = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        if not path.is_file():
            raise SystemExit(f"{path} is imported by the panel but missing from {dist}: build the panel again")
        seen.append(path)
        todo.extend(path.parent / name for name in STATIC_IMPORT.findall(path.read_text()))
    return sorted(seen)


def main() -> int:
    files = sorted(p for p in DIST.rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"{DIST} is empty: build the panel first (cd ui_ext && npm ci && npm run build)")
    total_raw = total_gz = js_raw = js_gz = 0
    for path in files:
        raw, packed = path.stat().st_size, gzip_size(path)
        total_raw += raw
        total_gz += packed
        if is_panel_js(path):
            js_raw += raw
            js_gz += packed
        print(f"{path.relative_to(DIST)!s:40} {raw / 1024:8.1f} KiB  gzip {packed / 1024:7.1f} KiB")
    print(f"{'total':40} {total_raw / 1024:8.1f} KiB  gzip {total_gz / 1024:7.1f} KiB")
    first = first_load(DIST)
    first_gz = sum(gzip_size(p) for p in first)
    print(f"\npanel JS on first paint of #/ ({', '.join(p.name for p in first)}): gzip {first_gz / 1024:.1f} KiB")
    over = js_gz / 1024 > BUDGET_KIB
    print(f"panel JS total (every .js but {NOT_PANEL}/): {js_raw / 1024:.1f} KiB, gzip {js_gz / 1024:.1f} KiB "
          f"of the {BUDGET_KIB:.0f} KiB budget: {'OVER' if over else 'within'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
