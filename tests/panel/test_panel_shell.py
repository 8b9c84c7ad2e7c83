"""The panel's shell in headless Chromium: the "Make a video" form (saved pipelines, checks in the browser before
pricing, image input, Tweak & re-run, cost), honest loading and error states, theme, title and focus."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Response, expect

from reelflow.store.db import session_scope
from reelflow.store.models import Run
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN, VastEmulator
from tests.support.files import make_image
from tests.support.gpu import save_gpu
from tests.support.web_api import Served


def save_pipeline(panel: Served, name: str, spec: dict[str, object]) -> str:
    answer = httpx.post(f"{panel.url}/api/pipelines", json={"name": name, "spec": spec}, headers=panel.headers,
                        timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["pipeline_id"]


def open_form(page: Page, panel: Served, hash_: str = "#/new") -> None:
    page.goto(f"{panel.url}/{hash_}")
    page.reload()  # the logged-in page is at "/" already: a new hash alone would not load the view afresh
    expect(page.get_by_role("radio", name="Local pan & zoom (CPU)", exact=True)).to_be_visible()


def test_none_resets_the_form_after_an_image_step_pipeline(panel: Served, page: Page) -> None:
    save_pipeline(panel, "generated start", {"model": "local-kenburns", "image_prompt": "a lighthouse at dusk",
                                             "prompt": "slow push in"})
    open_form(page, panel)
    choice = page.get_by_label("Start from a saved pipeline")
    choice.select_option(label="generated start")
    expect(page.get_by_text("generates its start image from")).to_be_visible()
    expect(page.get_by_label("Image file (PNG, JPEG or WebP)")).to_have_count(0)
    expect(page.get_by_label("Prompt")).to_have_value("slow push in")

    choice.select_option(label="none")
    expect(page.get_by_label("Image file (PNG, JPEG or WebP)")).to_be_visible()
    expect(page.get_by_text("generates its start image from")).to_have_count(0)
    expect(page.get_by_label("Prompt")).to_have_value("")


def test_values_are_checked_in_the_browser_and_only_valid_ones_priced(panel: Served, page: Page) -> None:
    failures: list[str] = []
    page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    open_form(page, panel)
    page.get_by_role("radio", name="Local pan & zoom (CPU)", exact=True).check()
    duration = page.get_by_label("Duration (s)")
    duration.fill("0")
    expect(duration).to_have_accessible_description(re.compile("between 0.5 and 30"))
    expect(duration).to_have_attribute("aria-invalid", "true")

    def priced(response: Response) -> bool:
        return "/api/models?" in response.url and "resolution=640x360" in response.url

    with page.expect_response(priced) as answer:
        page.get_by_label("Resolution").fill("640x360")
    assert answer.value.status == 200 and "duration=" not in answer.value.url  # the invalid 0 was never sent

    page.get_by_label("Resolution").fill("64x9999")
    expect(page.get_by_label("Resolution")).to_have_accessible_description(re.compile("height 64–1920"))
    duration.fill("2")  # the error clears on edit
    expect(duration).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Duration must be")).to_have_count(0)
    page.get_by_role("button", name="Make video").click()  # the invalid resolution stops it in the browser
    expect(page.get_by_label("Resolution")).to_be_focused()
    expect(page.get_by_role("alert")).to_have_count(0)
    assert failures == []


def test_a_pipeline_with_an_unavailable_model_says_why_next_to_make_video(panel: Served, page: Page) -> None:
    save_pipeline(panel, "fal wan", {"model": "wan-2.5-i2v", "prompt": "waves"})
    open_form(page, panel)
    page.get_by_label("Start from a saved pipeline").select_option(label="fal wan")
    button = page.get_by_role("button", name="Make video")
    expect(button).to_be_disabled()
    expect(button).to_have_accessible_description(re.compile(r"“fal wan” uses Wan 2\.5.*FAL_KEY"))
    expect(page.get_by_text("Set FAL_KEY (your fal.ai key)").first).to_be_visible()


def test_image_checked_on_select_previewed_and_uploaded_once(panel: Served, page: Page, tmp_path: Path) -> None:
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" and "/api/uploads" in r.url else None)
    doomed = save_pipeline(panel, "to be deleted", {"model": "local-kenburns", "prompt": "drift"})
    open_form(page, panel)
    file_input = page.get_by_label("Image file (PNG, JPEG or WebP)")
    file_input.set_input_files({"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"})
    expect(file_input).to_have_accessible_description(re.compile("cannot be read as an image"))
    file_input.set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"})
    expect(file_input).to_have_accessible_description(re.compile("choose a PNG, JPEG or WebP"))
    assert uploads == []  # checked in the browser, never sent

    image = make_image(tmp_path / "beach.png", (640, 320))
    file_input.set_input_files(str(image))
    expect(page.get_by_role("img", name="preview of beach.png")).to_be_visible()
    expect(file_input).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Resolution").fill("320x320")
    expect(page.get_by_text("the bright frame is the 320x320 shape")).to_be_visible()

    # A submit that fails (the pipeline was deleted meanwhile, from elsewhere) and its retry upload the file once.
    page.get_by_label("Start from a saved pipeline").select_option(label="to be deleted")
    expect(page.get_by_label("Prompt")).to_have_value("drift")
    assert httpx.delete(f"{panel.url}/api/pipelines/{doomed}", headers=panel.headers, timeout=10).status_code == 204
    page.get_by_role("button", name="Make video").click()
    expect(page.get_by_role("alert")).to_contain_text("pipeline")
    assert len(uploads) == 1
    page.reload()  # the choice is gone from the list now; the same File is still the one chosen
    expect(page.get_by_role("radio", name="Local pan & zoom (CPU)", exact=True)).to_be_visible()


def test_paste_and_drop_take_the_image(panel: Served, page: Page, tmp_path: Path) -> None:
    open_form(page, panel)
    data = make_image(tmp_path / "pasted.png", (300, 200)).read_bytes()
    paste = """async (bytes) => {
        const file = new File([new Uint8Array(bytes)], "pasted.png", { type: "image/png" });
        const transfer = new DataTransfer(); transfer.items.add(file);
        window.dispatchEvent(new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true }));
    }"""
    page.evaluate(paste, list(data))
    expect(page.get_by_role("img", name="preview of pasted.png")).to_be_visible()
    drop = """async (bytes) => {
        const file = new File([new Uint8Array(bytes)], "dropped.png", { type: "image/png" });
        const transfer = new DataTransfer(); transfer.items.add(file);
        const target = document.querySelector("textarea");
        for (const type of ["dragover", "drop"])
            target.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }"""
    page.evaluate(drop, list(data))
    expect(page.get_by_role("img", name="preview of dropped.png")).to_be_visible()


def test_tweak_and_rerun_fills_the_form_with_a_new_seed(panel: Served, page: Page, tmp_path: Path) -> None:
    image = make_image(tmp_path / "hills.png", (320, 240))
    with image.open("rb") as handle:
        upload = httpx.post(f"{panel.url}/api/uploads", files={"file": ("hills.png", handle, "image/png")},
                            headers=panel.headers, timeout=10).json()
    created = httpx.post(f"{panel.url}/api/runs", headers=panel.headers, timeout=10, json={
        "model": "local-kenburns", "image": upload["image"], "prompt": "over the hills", "duration": 1.5, "fps": 8,
        "resolution": "320x240", "seed": 42})
    assert created.status_code in (200, 201), created.text
    run_id = created.json()["run_id"]

    open_form(page, panel, f"#/new?from={run_id}")
    expect(page.get_by_label("Prompt")).to_have_value("over the hills")
    expect(page.get_by_label("Duration (s)")).to_have_value("1.5")
    expect(page.get_by_label("Resolution")).to_have_value("320x240")
    seed = page.get_by_label("Seed")
    expect(seed).not_to_have_value("")
    assert seed.input_value() != "42"
    expect(page.get_by_role("radio", name=f"The image of run {run_id[:8]}")).to_be_checked()
    expect(page.get_by_role("img", name=f"the input image of run {run_id[:8]}")).to_be_visible()
    page.get_by_role("button", name="Use its seed (42)").click()
    expect(seed).to_have_value("42")

    page.get_by_role("button", name="Make video").click()  # free: no question asked
    page.wait_for_url("**/#/runs/*")
    again = page.url.rsplit("/", 1)[-1]
    spec = httpx.get(f"{panel.url}/api/runs/{again}", headers=panel.headers, timeout=10).json()["spec"]
    assert spec["image"] == upload["image"] and spec["seed"] == 42 and spec["prompt"] == "over the hills"


def test_gpu_settings_when_the_api_is_down_end_in_an_error_with_retry(panel: Served, page: Page) -> None:
    page.route("**/api/gpu/config", lambda route: route.abort("connectionrefused"))
    page.goto(f"{panel.url}/#/gpu")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("does not answer")
    expect(page.get_by_text("Loading GPU settings")).to_have_count(0)
    page.unroute("**/api/gpu/config")
    alert.get_by_role("button", name="Retry").click()
    expect(page.get_by_label("Provider")).to_be_visible()


def test_connection_lost_banner_while_the_event_stream_reconnects(panel: Served, page: Page) -> None:
    page.route("**/api/events", lambda route: route.abort("connectionreset"))
    page.goto(f"{panel.url}/#/runs")
    expect(page.get_by_text("Connection to the reelflow server lost — retrying")).to_be_visible()
    page.unroute("**/api/events")
    expect(page.get_by_text("Connection to the reelflow server lost")).to_have_count(0, timeout=45_000)


def test_theme_toggle_is_remembered_and_title_and_focus_follow_the_view(panel: Served, page: Page) -> None:
    page.emulate_media(color_scheme="light")
    page.goto(f"{panel.url}/#/new")
    expect(page).to_have_title("Make a video · reelflow")
    background = "() => getComputedStyle(document.documentElement).getPropertyValue('--bg').trim()"
    assert page.evaluate(background) == "#f7f7f8"
    page.get_by_label("Theme").select_option(label="Dark")
    assert page.evaluate(background) == "#16161a"
    page.reload()
    expect(page.get_by_label("Theme")).to_have_value("dark")
    assert page.evaluate(background) == "#16161a"
    page.get_by_label("Theme").select_option(label="System")
    assert page.evaluate(background) == "#f7f7f8"

    page.get_by_role("link", name="Spend").click()
    expect(page).to_have_title("Spend · reelflow")
    expect(page.get_by_role("main")).to_be_focused()
    page.get_by_role("link", name="GPU").click()
    expect(page).to_have_title("GPU · reelflow")


def record_run(model: str, cost: float | None, prompt: str) -> str:
    """A finished run as the store has it once its provider reported (or did not report) a cost."""
    run_id = uuid.uuid4().hex
    now = datetime.now(UTC).replace(tzinfo=None)
    with session_scope() as s:
        s.add(Run(id=run_id, idempotency_key=uuid.uuid4().hex, model_id=model, backend="fal", status="completed",
                  spec={"model": model, "prompt": prompt}, cost_usd=cost, created_at=now, finished_at=now))
    return run_id


def test_spend_page_chart_tables_and_unknown_costs(panel: Served, page: Page) -> None:
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    model = f"panel-spend-{uuid.uuid4().hex[:6]}"  # a model of its own: other tests count the catalog's runs
    costly = record_run(model, 3.2, "a very costly sunrise")
    record_run(model, None, "a run fal reported no cost for")
    page.goto(f"{panel.url}/#/new")
    page.reload()
    expect(page.get_by_role("heading", name="Make a video")).to_be_visible()
    assert not any("Spend" in url for url in scripts), "the spend chart's code loads only on #/spend"

    page.get_by_role("link", name="Spend").click()
    expect(page.get_by_text("This month so far")).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ runs? of unknown cost")).first).to_be_visible()
    expect(page.locator(".spend-chart canvas")).to_have_count(1)
    models = page.get_by_role("table").filter(has_text=model)
    expect(models.get_by_role("row", name=re.compile(model))).to_contain_text("$3.20")
    page.get_by_text("Spend per day as a table").click()
    expect(page.get_by_role("row").filter(has_text=datetime.now(UTC).date().isoformat())).to_be_visible()
    page.get_by_role("link", name=f"$3.20 · {model}").click()
    page.wait_for_url(f"**/#/runs/{costly}")


def saved_gpu(**fields: object) -> None:
    """The GPU endpoint saved the way `reelflow gpu set` does (in a thread: Playwright's loop runs in this one)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(save_gpu, **fields).result()


@pytest.fixture(scope="module")
def vast() -> Iterator[VastEmulator]:
    with VastEmulator() as emu:
        yield emu


def test_gpu_view_follows_start_and_stop_live_and_prices_at_the_instance_rate(
        panel: Served, page: Page, vast: VastEmulator) -> None:
    saved_gpu(provider="vastai", vastai_instance_id=DEFAULT_INSTANCE_ID, vastai_api_key=API_KEY,
              vastai_api_url=vast.url, portal_token=PORTAL_TOKEN)
    vast.configure(loading_polls=2)
    try:
        page.goto(f"{panel.url}/#/gpu")
        page.reload()
        state = page.get_by_test_id(f"instance-{DEFAULT_INSTANCE_ID}-state")
        expect(state).to_have_text(re.compile("^running"))
        stop = page.get_by_role("button", name=f"Stop {DEFAULT_INSTANCE_ID}")
        stop.click()
        dialog = page.get_by_role("dialog", name=f"Stop instance {DEFAULT_INSTANCE_ID}?")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        assert vast.stats()["instances"][DEFAULT_INSTANCE_ID]["actual_status"] == "running"
        stop.click()
        dialog.get_by_role("button", name=f"Stop {DEFAULT_INSTANCE_ID}").click()
        expect(state).to_have_text(re.compile("^exited"))  # no Refresh pressed
        start = page.get_by_role("button", name=f"Start {DEFAULT_INSTANCE_ID}")
        start.click()
        expect(start).to_be_disabled()
        expect(stop).to_be_disabled()  # both, while it starts
        expect(state).to_have_text(re.compile("^running"), timeout=30_000)
        expect(page.get_by_role("status").filter(has_text="Starting instance")).to_have_count(0)

        page.get_by_role("button", name="Discover URLs (vast.ai)").click()
        expect(page.get_by_text("Found and saved: ComfyUI https://comfy-emu.trycloudflare.com")).to_be_visible()
        expect(page.get_by_label("ComfyUI URL")).to_have_value("https://comfy-emu.trycloudflare.com")

        page.goto(f"{panel.url}/#/new")
        page.reload()
        expect(page.locator(".card", has_text="Wan 2.2").first).to_contain_text("× $0.42/hour (your selected instance)")
    finally:
        vast.reset()
        saved_gpu(provider="none")


def test_a_paid_run_says_its_cost_and_is_confirmed_first(panel: Served, page: Page, tmp_path: Path) -> None:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/api/runs") else None)
    with ComfyEmulator(job_seconds=0.4, progress_steps=2) as comfy:
        saved_gpu(provider="local", comfyui_url=comfy.url)
        try:
            open_form(page, panel)
            page.get_by_role("radio", name="Wan 2.2 I2V 14B + LightX2V 4-step (your GPU, ComfyUI)", exact=True).check()
            expect(page.get_by_role("status").filter(has_text="Price unknown beforehand")).to_be_visible()
            page.get_by_label("Image file (PNG, JPEG or WebP)").set_input_files(
                str(make_image(tmp_path / "gpu.png", (320, 240))))
            page.get_by_label("Prompt (required)").fill("a slow pan")
            page.get_by_role("button", name="Make video").click()
            dialog = page.get_by_role("dialog", name="Start a paid run?")
            expect(dialog).to_contain_text("Price unknown beforehand")
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_be_hidden()
            assert posts == []
            page.get_by_role("button", name="Make video").click()
            with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/runs")):
                dialog.get_by_role("button", name="Start anyway").click()
            page.wait_for_url("**/#/runs/*")
            run_id = page.url.rsplit("/", 1)[-1]
            httpx.post(f"{panel.url}/api/runs/{run_id}/cancel", headers=panel.headers, timeout=30)
        finally:
            saved_gpu(provider="none")
