"""The built panel keeps within issue 15's budget: every .js it ships (lazy chunks included, Swagger UI's
docs-assets left out) at most 150 KiB gzip. A size, not a timing: ``benchmarks/panel_size.py`` prints the table."""

from __future__ import annotations

from benchmarks import panel_size
from tests.support.panel_fixtures import build_panel


def test_the_panels_javascript_is_within_its_gzip_budget() -> None:
    dist = build_panel()
    assert dist == panel_size.DIST
    shipped = [p for p in dist.rglob("*.js") if panel_size.is_panel_js(p)]
    assert len(shipped) >= 2, "the panel and at least one lazy chunk"
    total_kib = sum(panel_size.gzip_size(p) for p in shipped) / 1024
    assert total_kib <= panel_size.BUDGET_KIB, f"{total_kib:.1f} KiB gzip of JavaScript, over the budget"
    first_kib = sum(panel_size.gzip_size(p) for p in panel_size.first_load(dist)) / 1024
    assert first_kib < total_kib / 2, f"the first paint loads {first_kib:.1f} of {total_kib:.1f} KiB: lazy chunks"
