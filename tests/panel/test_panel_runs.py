"""The runs gallery, compare view and run page in headless Chromium against the real API and real local renders."""

from __future__ import annotations

import io
import re
import shlex
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from reelflow.store import repo
from tests.emulators.common.media import image_bytes
from tests.support.cli import run_cli
from tests.support.panel_fixtures import assert_no_horizontal_scroll, axe_violations, screenshot
from tests.support.polling import wait_until
from tests.support.web_api import Served

TAG = uuid.uuid4().hex[:6]
PROMPTS = (f"heron {TAG} lifts off the lake", f"fox {TAG} trots at dusk", f"owl {TAG} turns its head")
VIDEOS = "[...document.querySelectorAll('[data-testid=compare-video]')]"
NAME = re.compile(r"\d{4}-\d{2}-\d{2}-local-kenburns-[a-z0-9-]+-[0-9a-f]{8}\.mp4")


@dataclass(frozen=True)
class Made:
    ids: list[str]
    image_size: tuple[int, int]


@pytest.fixture(scope="module")
def made(panel: Served) -> Iterator[Made]:
    size = (1280, 853)
    with httpx.Client(base_url=panel.url, headers=panel.headers, timeout=60) as http:
        png = image_bytes(size, (30, 120, 200), "PNG")
        upload = http.post("/api/uploads", files={"file": ("in.png", png, "image/png")})
        assert upload.status_code == 201, upload.text
        ids = []
        for prompt in PROMPTS:
            body = {"model": "local-kenburns", "image": upload.json()["image"], "prompt": prompt, "duration": 3.0,
                    "fps": 8, "resolution": "320x214"}
            answer = http.post("/api/runs", json=body)
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["run_id"])
    for run_id in ids:
        wait_until(lambda run_id=run_id: repo.get_run(run_id).status == "completed", timeout=300, what="a render")
    yield Made(ids=ids, image_size=size)


def _check_view(page: Page, artifacts_dir: Path, name: str) -> None:
    assert axe_violations(page) == []
    screenshot(page, artifacts_dir, f"{name}-light")
    page.emulate_media(color_scheme="dark")
    assert axe_violations(page) == []
    screenshot(page, artifacts_dir, f"{name}-dark")
    page.emulate_media(color_scheme="light")


def test_gallery_search_filters_sort_and_table_kept_in_the_url(panel: Served, made: Made, page: Page,
                                                               phone_page: Page, artifacts_dir: Path) -> None:
    page.goto(f"{panel.url}/#/runs")
    page.get_by_label("Search prompts").fill(f"{TAG} lifts")
    expect(page.get_by_role("link", name=PROMPTS[0])).to_be_visible()
    expect(page.get_by_role("link", name=PROMPTS[1])).to_have_count(0)
    expect(page).to_have_url(re.compile(r"q=" + TAG))
    page.get_by_label("Search prompts").fill(TAG)
    expect(page.get_by_role("link", name=PROMPTS[1])).to_be_visible()
    page.get_by_label("Status").select_option("completed")
    page.get_by_label("Sort").select_option("created_at")
    expect(page).to_have_url(re.compile(r"status=completed"))
    titles = page.locator(".card-title")
    expect(titles).to_have_text(list(PROMPTS))
    expect(page.get_by_role("status").filter(has_text="Showing")).to_have_text("Showing 1–3 of 3")
    page.reload()
    expect(page.get_by_label("Search prompts")).to_have_value(TAG)
    expect(page.get_by_label("Status")).to_have_value("completed")
    expect(page.get_by_label("Sort")).to_have_value("created_at")
    expect(titles).to_have_text(list(PROMPTS))
    page.get_by_label("Sort").select_option("-created_at")
    expect(titles).to_have_text(list(PROMPTS[::-1]))
    card_video = page.get_by_test_id("card-video").first
    assert card_video.get_attribute("src") is None and card_video.get_attribute("poster")
    card_video.hover()
    expect(card_video).to_have_attribute("src", re.compile(r"/api/media/"))
    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_text("No runs match.")).to_be_visible()
    page.get_by_label("Status").select_option("completed")
    _check_view(page, artifacts_dir, "runs-gallery")
    page.get_by_role("radio", name="Table").check()
    expect(page).to_have_url(re.compile(r"view=table"))
    expect(page.get_by_role("table").get_by_role("link")).to_have_count(3)
    page.reload()
    expect(page.get_by_role("table").get_by_role("link", name=PROMPTS[0])).to_be_visible()
    _check_view(page, artifacts_dir, "runs-table")

    for view in ("", "&view=table"):
        phone_page.goto(f"{panel.url}/#/runs?q={TAG}{view}")
        expect(phone_page.get_by_role("link", name=PROMPTS[0]).first).to_be_visible()
        assert_no_horizontal_scroll(phone_page)
        screenshot(phone_page, artifacts_dir, f"runs-{'table' if view else 'gallery'}-phone")


def test_compare_plays_in_step_and_bulk_download_gives_named_files(panel: Served, made: Made, page: Page,
                                                                   phone_page: Page, artifacts_dir: Path) -> None:
    page.goto(f"{panel.url}/#/runs?q={TAG}")
    for prompt in PROMPTS[:2]:
        page.get_by_role("checkbox", name=f"Select {prompt}").check()
    page.get_by_role("button", name="Compare 2 videos").click()
    videos = page.get_by_test_id("compare-video")
    expect(videos).to_have_count(2)
    page.wait_for_function(f"() => {VIDEOS}.every(v => v.readyState >= 2)")
    videos.first.evaluate("v => v.play()")
    wait_until(lambda: page.evaluate(f"() => {VIDEOS}.every(v => !v.paused && v.currentTime > 0.3)"), timeout=20,
               what="both playing")
    for _ in range(5):
        times = page.evaluate(f"() => {VIDEOS}.map(v => v.currentTime)")
        assert abs(times[0] - times[1]) <= 0.3, times
    videos.first.evaluate("v => { v.pause(); v.currentTime = 2.0; }")
    wait_until(lambda: page.evaluate(f"() => {VIDEOS}.every(v => v.paused && Math.abs(v.currentTime - 2.0) <= 0.3)"),
               timeout=20, what="the follower to pause at the leader's time")
    _check_view(page, artifacts_dir, "runs-compare")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download 2 as zip").click()
    data = Path(download.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
    assert len(names) == 2 and all(NAME.fullmatch(n) for n in names), names
    assert {n[-12:-4] for n in names} == {run_id[:8] for run_id in made.ids[:2]}
    assert any("-heron-" in n for n in names) and any("-fox-" in n for n in names)

    phone_page.goto(f"{panel.url}/#/runs?q={TAG}")
    for prompt in PROMPTS[:2]:
        phone_page.get_by_role("checkbox", name=f"Select {prompt}").check()
    phone_page.get_by_role("button", name="Compare 2 videos").click()
    expect(phone_page.get_by_test_id("compare-video")).to_have_count(2)
    assert_no_horizontal_scroll(phone_page)
    screenshot(phone_page, artifacts_dir, "runs-compare-phone")


def test_bulk_cancel_from_the_gallery(panel: Served, made: Made, page: Page) -> None:
    with httpx.Client(base_url=panel.url, headers=panel.headers, timeout=60) as http:
        image = http.post("/api/uploads", files={"file": ("l.png", image_bytes((640, 360), (90, 20, 20), "PNG"),
                                                          "image/png")}).json()["image"]
        bodies = [{"model": "local-kenburns", "image": image, "prompt": f"long {TAG} {i}", "duration": 30.0, "fps": 60,
                   "resolution": "1920x1080"} for i in range(2)]
        long_ids = [http.post("/api/runs", json=body).json()["run_id"] for body in bodies]
    page.goto(f"{panel.url}/#/runs?q=long {TAG}")
    for i in range(2):
        page.get_by_role("checkbox", name=f"Select long {TAG} {i}").check()
    page.get_by_role("button", name="Cancel 2 runs").click()
    expect(page.get_by_text("Cancelled 2 of 2 runs.")).to_be_visible(timeout=60_000)
    for run_id in long_ids:
        wait_until(lambda run_id=run_id: repo.get_run(run_id).status == "cancelled", timeout=60, what="cancelled")
    expect(page.locator(".card .chip.cancelled")).to_have_count(2)


def test_run_page_is_a_record(panel: Served, made: Made, page: Page, phone_page: Page, artifacts_dir: Path) -> None:
    run_id = made.ids[0]
    stored = repo.get_run(run_id)
    assert isinstance(stored.spec["seed"], int)  # none was given: a random one was drawn and recorded
    page.goto(f"{panel.url}/#/runs/{run_id}")
    expect(page.get_by_test_id("run-status")).to_have_text("completed")
    expect(page.get_by_test_id("fact-seed")).to_have_text(str(stored.spec["seed"]))
    expect(page.get_by_test_id("run-prompt")).to_have_text(PROMPTS[0])
    expect(page.get_by_test_id("fact-elapsed")).not_to_have_text("—")
    image = page.get_by_role("img", name="the run's input image")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('.input-image').complete")
    drawn = image.evaluate("""img => {
        const box = img.getBoundingClientRect(); const s = getComputedStyle(img);
        return {fit: s.objectFit, natural: img.naturalWidth / img.naturalHeight, box: box.width / box.height}; }""")
    width, height = made.image_size
    assert drawn["fit"] == "contain" and abs(drawn["natural"] - width / height) < 0.01
    assert abs(drawn["box"] - width / height) < 0.02, drawn
    timeline = page.get_by_test_id("timeline").locator("li")
    expect(timeline.last).to_contain_text("completed")
    assert timeline.count() >= 3
    assert page.get_by_test_id("timeline").get_attribute("aria-live") is None
    expect(page.get_by_test_id("latest-event")).to_contain_text("completed")
    _check_view(page, artifacts_dir, "run-page")

    cli = page.get_by_test_id("copy-cli").inner_text()
    assert cli.startswith("reelflow run --model local-kenburns") and f"--seed {stored.spec['seed']}" in cli
    done = run_cli(*shlex.split(cli)[1:], "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    python = page.get_by_test_id("copy-python").inner_text()
    assert python.startswith("import reelflow") and "reelflow.submit(" in python
    assert f'"seed": {stored.spec["seed"]}' in python
    curl = page.get_by_test_id("copy-curl").inner_text()
    assert "Authorization: Bearer $REELFLOW_API_TOKEN" in curl and panel.headers["Authorization"].split()[1] not in curl
    assert f"{panel.url}/api/runs" in curl and '"seed":' in curl

    expect(page.get_by_role("link", name="Tweak & re-run")).to_have_attribute("href", f"#/new?from={run_id}")
    page.get_by_role("button", name="Re-run").click()
    expect(page).not_to_have_url(re.compile(run_id))
    new_id = page.url.rsplit("/", 1)[1]
    assert new_id != run_id and repo.get_run(new_id).spec["seed"] == stored.spec["seed"]
    expect(page.get_by_test_id("run-status")).to_have_text("completed", timeout=120_000)

    phone_page.goto(f"{panel.url}/#/runs/{run_id}")
    expect(phone_page.get_by_test_id("run-status")).to_have_text("completed")
    assert_no_horizontal_scroll(phone_page)
    screenshot(phone_page, artifacts_dir, "run-page-phone")
