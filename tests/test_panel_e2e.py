"""The panel end to end in headless Chromium (Debian's, driven by Playwright; no browser is downloaded):
choose the local model, upload an image, submit, watch the run complete over SSE, play the video."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from reelflow.core.api_token import login_url, read_api_token
from tests.support.files import make_image
from tests.support.web_api import Served

RUN_TIMEOUT_MS = 120_000
PREFECT_UI = os.environ["PREFECT_API_URL"].removesuffix("/api")


@pytest.fixture()
def page(browser: Browser, panel: Served) -> Iterator[Page]:
    """A browser logged in the way a user is: through the login URL `reelflow serve` prints."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    token = read_api_token()
    assert token
    page.goto(login_url(panel.url, token))
    expect(page.get_by_role("heading", name="Make a video")).to_be_visible()  # rendered once logged in
    assert page.url == f"{panel.url}/"
    page.go_back()
    assert page.url == "about:blank", "the login URL stayed in the history"
    page.go_forward()
    assert page.url == f"{panel.url}/"
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["reelflow_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and token not in session["value"]
    yield page
    context.close()


def test_make_a_video_from_the_panel(panel: Served, page: Page, tmp_path: Path, artifacts_dir: Path) -> None:
    image = make_image(tmp_path / "beach.png", (480, 320))
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    failures: list[str] = []
    page.on("response", lambda response: failures.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)

    page.goto(f"{panel.url}/")
    expect(page.get_by_role("heading", name="Make a video")).to_be_visible()
    local = page.get_by_role("radio", name="Local pan & zoom (CPU)")
    expect(local).to_be_enabled()
    local.check()
    page.get_by_text("Needs setup").click()  # models that cannot run here are collapsed under it
    unavailable = page.get_by_role("radio", name="Wan 2.5 image-to-video (fal)")
    expect(unavailable).to_be_disabled()
    expect(page.locator(".card.unavailable").first).to_contain_text("missing:")
    expect(page.get_by_role("group", name="Text to video · fal")).to_contain_text("Veo 3.1 text-to-video")
    expect(page.locator(".card", has_text="first-last-frame")).to_contain_text("first + last frame")
    expect(page.locator(".card", has_text="Veo 3.1 image-to-video")).to_contain_text("audio on request")

    page.get_by_label("Image file (PNG, JPEG or WebP)").set_input_files(str(image))
    page.get_by_label("Prompt").fill("a slow drift along the beach")
    page.get_by_label("Duration (s)").fill("2")
    page.get_by_label("Frames per second").fill("12")
    page.get_by_label("Resolution").fill("320x240")
    page.get_by_label("Seed").fill("42")
    page.screenshot(path=str(artifacts_dir / "panel-form.png"), full_page=True)
    page.get_by_role("button", name="Make video").click()

    page.wait_for_url("**/#/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    status = page.get_by_test_id("run-status")
    expect(status).to_have_text("completed", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("fact-cost")).to_have_text("free")
    stored = httpx.get(f"{panel.url}/api/runs/{run_id}", timeout=10, headers=panel.headers).json()
    assert stored["prefect_url"] == f"{PREFECT_UI}/runs/flow-run/{stored['prefect_flow_run_id']}"
    expect(page.get_by_role("link", name="Open in the Prefect UI")).to_have_attribute(
        "href", stored["prefect_url"])

    streams = [r for r in requests if r.url.endswith(f"/api/runs/{run_id}/events")]
    assert streams and streams[0].resource_type == "eventsource", [r.url for r in requests]
    polls = [r for r in requests if r.url.endswith(f"/api/runs/{run_id}")]
    assert len(polls) <= 6, f"the page polled the run {len(polls)} times instead of listening"

    video = page.get_by_test_id("run-video")
    expect(video).to_be_visible()
    assert video.get_attribute("poster")
    page.evaluate("() => document.querySelector('[data-testid=run-video]').play()")
    page.wait_for_function("() => { const v = document.querySelector('[data-testid=run-video]');"
                           " return v.readyState >= 3 && v.currentTime > 0.3 && !v.paused; }", timeout=30_000)
    width, height = page.evaluate("() => { const v = document.querySelector('[data-testid=run-video]');"
                                  " return [v.videoWidth, v.videoHeight]; }")
    assert (width, height) == (320, 240)
    page.screenshot(path=str(artifacts_dir / "panel.png"), full_page=True)

    page.get_by_role("link", name="Runs").click()
    row = page.locator(f"[data-run-id='{run_id}']")
    expect(row.locator(".chip")).to_have_text("completed")
    assert failures == []


def test_run_list_updates_live(panel: Served, page: Page, tmp_path: Path) -> None:
    with page.expect_response(lambda response: response.url.endswith("/api/events")) as listening:
        page.goto(f"{panel.url}/#/runs")
    assert listening.value.request.resource_type == "eventsource" and listening.value.status == 200
    count = page.get_by_role("status").filter(has_text=re.compile("^(Showing|No runs)"))
    expect(count).not_to_have_text("Loading runs…")
    before = count.inner_text()
    image = make_image(tmp_path / "lake.png", (320, 200))
    with httpx.Client(base_url=panel.url, timeout=60, headers=panel.headers) as client:
        uploaded = client.post("/api/uploads", files={"file": ("lake.png", image.read_bytes(), "image/png")}).json()
        run = client.post("/api/runs", json={"model": "local-kenburns", "image": uploaded["image"], "duration": 1.0,
                                             "fps": 8, "resolution": "160x96", "seed": 77}).json()
    # A run that arrives does not shift the listed page or its count: it is announced, and shown on demand.
    expect(count).to_have_text(before)
    page.get_by_role("button", name="Show 1 new run").click(timeout=30_000)
    total = 1 if before.startswith("No runs") else int(before.rsplit(" ", 1)[1]) + 1
    expect(count).to_have_text(f"Showing 1–{min(total, 24)} of {total}")
    row = page.locator(f"[data-run-id='{run['run_id']}']")
    expect(row).to_be_visible()
    expect(page.locator("[data-run-id]")).to_have_count(min(total, 24))
    expect(row.locator(".chip")).to_have_text("completed", timeout=RUN_TIMEOUT_MS)

