"""Every view of the panel at a desktop's and a phone's size, in light and dark mode: no sideways scroll on the
phone, no serious or critical axe-core violation, a screenshot of each among the CI artifacts."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from reelflow.core.api_token import login_url, read_api_token
from tests.support.cli import ROOT
from tests.support.files import make_image
from tests.support.panel_fixtures import DESKTOP, PHONE, assert_no_horizontal_scroll, axe_violations, screenshot
from tests.support.web_api import Served

SAMPLE = str(ROOT / "reelflow" / "assets" / "sample.jpg")
SIZES = {"desktop": (DESKTOP, {}), "phone": (PHONE, {"is_mobile": True, "has_touch": True})}


@pytest.fixture(scope="module")
def records(panel: Served, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A run and a pipeline run to show (their pages are views too)."""
    image = make_image(tmp_path_factory.mktemp("a11y") / "hills.png", (320, 240))
    with image.open("rb") as handle:
        upload = httpx.post(f"{panel.url}/api/uploads", files={"file": ("hills.png", handle, "image/png")},
                            headers=panel.headers, timeout=10).json()
    run = httpx.post(f"{panel.url}/api/runs", headers=panel.headers, timeout=10, json={
        "model": "local-kenburns", "image": upload["image"], "prompt": "over the hills with a long prompt that "
        "wraps on a phone", "duration": 1, "fps": 6, "resolution": "128x96", "seed": 3})
    assert run.status_code in (200, 201), run.text
    definition = {"name": f"a11y-{uuid.uuid4().hex[:6]}", "inputs": {"picture": {"type": "image",
                                                                                  "default": SAMPLE}},
                  "steps": [{"id": "clip", "kind": "image_to_video", "model": "local-kenburns",
                             "image": "$inputs.picture", "params": {"frames": 6, "fps": 6, "resolution": "128x96"}}]}
    stored = httpx.post(f"{panel.url}/api/pipelines", json={"definition": definition}, headers=panel.headers,
                        timeout=10)
    assert stored.status_code == 201, stored.text
    pipeline_run = httpx.post(f"{panel.url}/api/pipelines/{stored.json()['pipeline_id']}/runs", json={},
                              headers=panel.headers, timeout=30)
    assert pipeline_run.status_code in (200, 201), pipeline_run.text
    return {"run": run.json()["run_id"], "pipeline_run": pipeline_run.json()["run_id"]}


def views(records: dict[str, str]) -> dict[str, str]:
    return {"new": "#/new", "runs": "#/runs", "run": f"#/runs/{records['run']}", "pipelines": "#/pipelines",
            "pipeline-new": "#/pipelines/new", "pipeline-run": f"#/pipeline-runs/{records['pipeline_run']}",
            "spend": "#/spend", "gpu": "#/gpu"}


def open_page(browser: Browser, panel: Served, size: str, theme: str) -> Page:
    viewport, extra = SIZES[size]
    page = browser.new_context(viewport=viewport, color_scheme=theme, **extra).new_page()  # type: ignore[arg-type]
    token = read_api_token()
    assert token
    page.goto(login_url(panel.url, token))
    expect(page.get_by_role("heading", name="Make a video")).to_be_visible()
    return page


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_view_fits_and_passes_axe(browser: Browser, panel: Served, records: dict[str, str], size: str,
                                        theme: str, artifacts_dir: Path) -> None:
    page = open_page(browser, panel, size, theme)
    problems: dict[str, object] = {}
    try:
        for name, hash_ in views(records).items():
            page.goto(f"{panel.url}/{hash_}")
            page.reload()
            expect(page.get_by_role("main")).not_to_be_empty()
            expect(page.locator("[aria-busy='true']")).to_have_count(0, timeout=15_000)
            if name == "new":
                page.get_by_text("Needs setup").click()  # the unavailable models' cards are checked too
            screenshot(page, artifacts_dir, f"{name}-{size}-{theme}")
            if size == "phone":
                width = page.evaluate("() => document.documentElement.scrollWidth")
                if width > PHONE["width"]:
                    problems[f"{name} scroll"] = width
                    continue
                assert_no_horizontal_scroll(page)
            found = axe_violations(page)
            if found:
                problems[f"{name} axe"] = found
    finally:
        page.context.close()
    assert problems == {}
