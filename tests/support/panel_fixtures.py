"""The panel in headless Chromium (Debian's, driven by Playwright; no browser is downloaded), as a pytest plugin.

Fixtures: ``panel`` (a served API with the built panel, one per test module), ``browser`` (one per module),
``page`` (logged in through the login URL at 1280×800) and ``phone_page`` (the same at 390×844). Helpers check what
every view must satisfy: no sideways scroll at a phone's width, no serious axe-core violation, a screenshot saved
among the CI artifacts.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from reelflow.core.api_token import login_url, read_api_token
from tests.support.cli import ROOT
from tests.support.web_api import Served, serve_api

UI = ROOT / "ui_ext"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
AXE = UI / "node_modules" / "axe-core" / "axe.min.js"


def _stale(dist: Path) -> bool:
    index = dist / "index.html"
    if not index.is_file():
        return True
    built = index.stat().st_mtime
    sources = [UI / "index.html", UI / "package-lock.json", *(UI / "src").rglob("*")]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def build_panel() -> Path:
    """``npm ci`` (when node_modules is missing) and ``npm run build`` when dist is missing or older than src."""
    dist = UI / "dist"
    npm = shutil.which("npm")
    if not (UI / "node_modules").is_dir():
        assert npm, "npm is needed to build the panel (ui_ext): install Node.js 20+"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=UI, check=True, timeout=600)
    if _stale(dist):
        assert npm, "npm is needed to build the panel (ui_ext): install Node.js 20+"
        subprocess.run([npm, "run", "build"], cwd=UI, check=True, timeout=600)
    return dist


@pytest.fixture(scope="module")
def panel() -> Iterator[Served]:
    build_panel()
    with serve_api() as api:
        yield api


# One per module: Playwright's sync API keeps an event loop running in this thread, where a later module's
# asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).is_file(), "Debian's chromium is needed: apt-get install -y chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def logged_in(browser: Browser, served: Served, viewport: dict[str, int], **context: Any) -> Page:
    """A new browser context logged in the way a user is: through the login URL `reelflow serve` prints."""
    page = browser.new_context(viewport=viewport, **context).new_page()
    token = read_api_token()
    assert token
    page.goto(login_url(served.url, token))
    expect(page.get_by_role("heading", name="Make a video")).to_be_visible()
    return page


@pytest.fixture()
def page(browser: Browser, panel: Served) -> Iterator[Page]:
    page = logged_in(browser, panel, DESKTOP)
    yield page
    page.context.close()


@pytest.fixture()
def phone_page(browser: Browser, panel: Served) -> Iterator[Page]:
    page = logged_in(browser, panel, PHONE, is_mobile=True, has_touch=True)
    yield page
    page.context.close()


def assert_no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    viewport = page.viewport_size
    assert viewport and width <= viewport["width"], f"{page.url} scrolls sideways: {width} px wide at {viewport}"


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's violations of the given impact on the page as it is now (axe-core comes from ui_ext's npm deps)."""
    # Evaluated, not added as a <script> tag: the panel's Content-Security-Policy blocks inline scripts.
    page.evaluate(f"() => {{ {AXE.read_text(encoding='utf-8')} }}")
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in found if v["impact"] in impacts]


def screenshot(page: Page, artifacts_dir: Path, name: str) -> Path:
    path = artifacts_dir / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
