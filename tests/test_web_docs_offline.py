"""The API docs with no internet (Swagger UI's files come with the built panel) and a panel built while the server
runs (served at once, not the "not built yet" page until a restart)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Route, expect

from reelflow.web import create_app
from tests.emulators.common.server import ServerThread
from tests.support.panel_fixtures import build_panel
from tests.support.web_api import Served, auth_headers


def test_docs_render_with_the_internet_cut_off(browser: Browser, panel: Served) -> None:
    page = browser.new_page()
    outside: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith(panel.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", local_only)
    page.goto(f"{panel.url}/docs")
    expect(page.get_by_role("heading", name="reelflow")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("/api/health").first).to_be_visible()
    assert outside == []
    page.close()


def test_a_panel_built_while_the_server_runs_is_served_at_once(tmp_path: Path) -> None:
    panel_dir = tmp_path / "dist"
    server = ServerThread(create_app(panel_dir=panel_dir), name="reelflow-api-unbuilt")
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        before = httpx.get(f"{base}/", timeout=10)
        assert before.status_code == 200 and "not built yet" in before.text
        assert httpx.get(f"{base}/api/health", timeout=10, headers=auth_headers()).json()["panel"] is False

        shutil.copytree(build_panel(), panel_dir)
        after = httpx.get(f"{base}/", timeout=10)
        assert after.status_code == 200 and "not built yet" not in after.text
        assert '<div id="root">' in after.text
        assert httpx.get(f"{base}/api/health", timeout=10, headers=auth_headers()).json()["panel"] is True
        docs = httpx.get(f"{base}/docs", timeout=10).text
        assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs
        bundle = httpx.get(f"{base}/docs-assets/swagger-ui-bundle.js", timeout=10)
        assert bundle.status_code == 200 and "javascript" in bundle.headers["content-type"]
        assert httpx.get(f"{base}/api/nope", timeout=10, headers=auth_headers()).status_code == 404
    finally:
        server.stop()
