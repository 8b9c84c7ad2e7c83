"""The pipelines in the panel, in headless Chromium against the real API: a pipeline built in the builder (palette,
connections dragged between handles, models, an approval), saved, run and approved on the live run graph; a redo
from the panel; the YAML pane and the graph following each other; a mismatched connection refused with its reason;
errors on the node they belong to; on fal (the emulator, behind `reelflow serve` as a user starts it) a redo paid
once per render; the phone width and axe-core in light and dark mode on the list, builder and run
page."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from reelflow.core.api_token import login_url, read_api_token
from reelflow.orchestration import prefect_server
from reelflow.runs.pipelines import describe_steps
from reelflow.store import repo
from tests.emulators.fal import EmulatorConfig, FalEmulator
from tests.support.cli import ROOT
from tests.support.fal_pipeline import FLUX, WAN, fal_env
from tests.support.panel_fixtures import (
    DESKTOP,
    assert_no_horizontal_scroll,
    axe_violations,
    screenshot,
)
from tests.support.pipeline_defs import keyframe_look_clip
from tests.support.polling import wait_until
from tests.support.store import store_rows, store_value
from tests.support.web_api import Served, answers, auth_headers

RUN_TIMEOUT_MS = 120_000
APPROVED = keyframe_look_clip()


def _handle(page: Page, node: str, handle: str, kind: str) -> Locator:
    return page.locator(f'.react-flow__handle.{kind}[data-nodeid="{node}"][data-handleid="{handle}"]')


def _drag(page: Page, source: str, output: str, target: str, field: str) -> None:
    """Drag from a node's output handle onto another node's input handle, as a person connects them."""
    start = _handle(page, source, output, "source")
    end = _handle(page, target, field, "target")
    page.get_by_role("region", name="Pipeline graph").scroll_into_view_if_needed()
    expect(start).to_be_visible()
    expect(end).to_be_visible()
    seen: list[Any] = []

    def settled() -> tuple[Any, Any] | None:
        # The view is laid out and fitted again once node sizes are measured: wait until it has stayed put for
        # five polls (a quarter of a second), not two, so a drag does not start on a graph still moving.
        seen.append((start.bounding_box(), end.bounding_box()))
        recent = seen[-5:]
        return recent[-1] if len(recent) == 5 and all(b == recent[-1] for b in recent) and None not in recent[-1] \
            else None

    a, b = wait_until(settled, 10, "the graph to settle")
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move((a["x"] + b["x"]) / 2, (a["y"] + b["y"]) / 2, steps=5)
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=5)
    page.mouse.up()


def _yaml(page: Page) -> Any:
    import yaml

    return yaml.safe_load(page.get_by_label("Edit the YAML here or the graph").input_value())


def _select_step(page: Page, step: str) -> None:
    page.get_by_test_id(f"node-{step}").click()
    expect(page.get_by_role("heading", name=f"Step {step}")).to_be_visible()


def _no_violations(page: Page, artifacts_dir: Path, name: str) -> None:
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert axe_violations(page) == [], f"{name} ({scheme})"
        screenshot(page, artifacts_dir, f"{name}-{scheme}")
    page.emulate_media(color_scheme="light")


def _saved(panel: Served, body: dict[str, Any]) -> str:
    made = httpx.post(f"{panel.url}/api/pipelines", json={"definition": body}, headers=panel.headers)
    assert made.status_code == 201, made.text
    return made.json()["pipeline_id"]


def _run_id(page: Page) -> str:
    page.wait_for_url("**/#/pipeline-runs/*")
    return page.url.rsplit("/", 1)[1]


def _run_saved_and_redo(page: Page, base: str, name: str, idea: str, seed: str) -> str:
    """Run the saved pipeline ``name`` from the list as a person does, wait for its approval, ask for a redo of the
    keyframe with ``seed``; returns the run id."""
    page.goto(f"{base}/#/pipelines")
    page.get_by_role("button", name=f"Run {name}…").click()
    page.get_by_role("textbox", name="idea").fill(f"{idea} {uuid.uuid4().hex[:6]}")
    page.get_by_role("button", name="Run pipeline").click()
    run_id = _run_id(page)
    expect(page.get_by_test_id("run-status")).to_have_text("waiting for approval", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_role("img", name="keyframe output to judge")).to_be_visible()
    page.get_by_role("button", name="Redo…").click()
    page.get_by_label("New seed").fill(seed)
    page.get_by_role("button", name="Render keyframe again").click()
    return run_id


def test_a_pipeline_built_in_the_builder_is_saved_run_and_approved_on_the_live_graph(
        page: Page, panel: Served, artifacts_dir: Path) -> None:
    name = f"built-{uuid.uuid4().hex[:6]}"
    page.goto(f"{panel.url}/#/pipelines/new")
    expect(page.get_by_role("heading", name="New pipeline")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Add Generate image").click()
    expect(page.get_by_role("heading", name="Step image")).to_be_visible()
    model = page.get_by_label("Model")
    expect(model.locator("option", has_text="needs setup").first).to_be_attached()  # flux-schnell: no FAL_KEY
    model.select_option("local-procedural-image")
    page.get_by_label("Resolution (WIDTHxHEIGHT)").fill("320x192")
    _drag(page, "__inputs", "idea", "image", "prompt")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("$inputs.idea")

    page.get_by_role("button", name="Add Approval").click()
    expect(page.get_by_role("heading", name="Step approve")).to_be_visible()
    expect(page.get_by_label("Judges step")).to_have_value("image")
    page.get_by_label("Timeout (seconds)").fill("600")

    page.get_by_role("button", name="Add Image to video").click()
    expect(page.get_by_role("heading", name="Step clip")).to_be_visible()
    page.get_by_label("Model").select_option("local-kenburns")
    _drag(page, "approve", "image", "clip", "image")
    expect(page.get_by_label("Image (optional)", exact=True)).to_have_value("$approve.image")
    page.get_by_label("Frames", exact=True).fill("6")
    page.get_by_label("Frames per second").fill("6")
    page.get_by_label("Resolution (WIDTHxHEIGHT)").fill("128x96")
    expect(page.get_by_test_id("estimate-total")).to_have_text("Estimated total: free")
    expect(page.get_by_test_id("node-clip")).to_contain_text("free")
    built = _yaml(page)
    assert [s["id"] for s in built["steps"]] == ["image", "approve", "clip"]
    assert built["steps"][2]["image"] == "$approve.image" and built["steps"][1]["target"] == "image"

    page.get_by_role("button", name="Save pipeline").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_contain_text("as version 1")
    _no_violations(page, artifacts_dir, "pipeline-builder")

    page.evaluate("""() => {
        window.__first = {};
        const seen = () => {
            for (const chip of document.querySelectorAll('[data-testid^="state-"]')) {
                const state = chip.textContent;
                if (!(state in window.__first)) window.__first[state] = performance.now();
            }
        };
        new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")
    clicked = page.evaluate("() => performance.now()")
    page.get_by_role("button", name="Run pipeline").click()
    run_id = _run_id(page)
    wait_until(lambda: page.evaluate("() => Object.keys(window.__first).some((s) => s !== 'queued')"), 60,
               "a node to leave queued")
    first = {state: round(at - clicked) for state, at in page.evaluate("() => window.__first").items()}
    (artifacts_dir / "pipeline-first-running.json").write_text(json.dumps({"click_to_first_state_ms": first}))
    print(f"\nfrom the run click to each node state first shown (ms): {first}")
    assert "running" in first or "completed" in first, first

    expect(page.get_by_test_id("run-status")).to_have_text("waiting for approval", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("state-approve")).to_have_text("waiting for approval")
    judged = page.get_by_role("img", name="image output to judge")
    expect(judged).to_be_visible()
    assert judged.evaluate("(img) => img.naturalWidth") == 320
    expect(page.get_by_test_id("node-image").get_by_role("img")).to_be_visible()
    _no_violations(page, artifacts_dir, "pipeline-run-waiting")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_test_id("run-status")).to_have_text("completed", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("state-clip")).to_have_text("completed")
    page.get_by_role("button", name="Step clip").click()
    expect(page.get_by_role("group", name="Outputs of clip").get_by_label("clip video")).to_be_visible()
    assert repo.get_run(run_id).status == "completed"
    answer = store_value("SELECT detail FROM steps WHERE run_id = ? AND name = 'approve'", run_id)
    assert json.loads(answer)["decision"] == "approve" and json.loads(answer)["via"] == "api"
    screenshot(page, artifacts_dir, "pipeline-run-completed")


def test_redo_from_the_panel_renders_the_judged_step_again_with_the_new_seed(
        page: Page, panel: Served, artifacts_dir: Path) -> None:
    name = f"redo-{uuid.uuid4().hex[:6]}"
    _saved(panel, {**APPROVED, "name": name})
    run_id = _run_saved_and_redo(page, panel.url, name, "a harbour at dawn", "4242")

    def second_round() -> bool:
        rows = [s for s in describe_steps(repo.get_run(run_id)) if s["id"] == "keyframe"]
        return bool(rows) and rows[0]["items"][0]["seed"] == 4242 and rows[0]["status"] == "completed"

    wait_until(second_round, 60, "the keyframe rendered again with seed 4242")
    expect(page.get_by_test_id("run-status")).to_have_text("waiting for approval", timeout=RUN_TIMEOUT_MS)
    renders = store_value("SELECT count(*) FROM steps WHERE run_id = ? AND name = 'keyframe'", run_id)
    assert renders == 2, f"one render per round, not more: {renders}"
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_test_id("run-status")).to_have_text("completed", timeout=RUN_TIMEOUT_MS)
    assert store_value("SELECT count(*) FROM steps WHERE run_id = ? AND name = 'keyframe'", run_id) == 2
    assert store_value("SELECT count(*) FROM steps WHERE run_id = ? AND name = 'clip'", run_id) == 1


def test_the_yaml_pane_and_the_graph_follow_each_other(page: Page, panel: Served) -> None:
    page.goto(f"{panel.url}/#/pipelines/new?template=story")
    expect(page.get_by_test_id("node-keyframe")).to_be_visible()
    pane = page.get_by_label("Edit the YAML here or the graph")
    text = pane.input_value()
    assert "{id: film," in text
    pane.fill(text.replace("{id: film,", "{id: movie,"))
    expect(page.get_by_test_id("node-movie")).to_be_visible()
    expect(page.get_by_test_id("node-film")).to_have_count(0)

    page.get_by_role("button", name="Add Join clips").click()
    expect(page.get_by_test_id("node-film")).to_be_visible()
    wait_until(lambda: [s["id"] for s in _yaml(page)["steps"]] == ["keyframe", "look", "shots", "movie", "film"], 10,
               "the YAML to show the step added in the graph")
    assert _yaml(page)["steps"][4]["kind"] == "concat"
    page.get_by_label("Add a clip").select_option("$shots.video")
    wait_until(lambda: _yaml(page)["steps"][4].get("videos") == ["$shots.video"], 10, "the YAML to follow the graph")


def test_a_mismatched_connection_is_refused_and_errors_go_on_their_node(page: Page, panel: Served) -> None:
    page.goto(f"{panel.url}/#/pipelines/new?template=story")
    expect(page.get_by_test_id("node-shots")).to_be_visible()
    before = _yaml(page)
    _drag(page, "__inputs", "idea", "shots", "image")
    expect(page.get_by_test_id("connect-error")).to_have_text(
        "Cannot connect input idea to shots.image: a text cannot go into image, which takes an image")
    assert _yaml(page) == before, "a refused connection changes nothing"
    _drag(page, "shots", "video", "keyframe", "prompt")
    expect(page.get_by_test_id("connect-error")).to_contain_text("cannot go into prompt, which takes text")

    pane = page.get_by_label("Edit the YAML here or the graph")
    pane.fill(pane.input_value().replace("model: local-procedural-image", "model: local-kenburns")
              .replace("crossfade: 0.5", "crossfade: 50"))
    keyframe = page.get_by_test_id("node-keyframe")
    expect(keyframe.locator(".step-node-error")).to_contain_text("model: 'local-kenburns' is a video model (i2v)")
    expect(page.get_by_test_id("node-film").locator(".step-node-error")).to_contain_text("params.crossfade")
    expect(page.get_by_test_id("node-shots").locator(".step-node-error")).to_have_count(0)
    expect(page.get_by_test_id("estimate-total")).to_have_text("2 problems to fix before it can run")
    _select_step(page, "film")
    crossfade = page.get_by_label("Crossfade (s)")
    expect(crossfade).to_have_attribute("aria-invalid", "true")
    described = crossfade.get_attribute("aria-describedby")
    assert described and "out of range" in page.locator(f"#{described}").inner_text()


def test_a_saved_pipeline_with_an_unavailable_model_warns_in_the_list(page: Page, panel: Served) -> None:
    name = f"needs-fal-{uuid.uuid4().hex[:6]}"
    _saved(panel, {"name": name, "steps": [{"id": "keyframe", "kind": "generate_image", "model": "flux-schnell",
                                             "prompt": "a pier"}]})
    page.goto(f"{panel.url}/#/pipelines")
    card = page.locator(".pipeline-card", has=page.get_by_role("heading", name=name))
    expect(card.locator(".warning")).to_contain_text("keyframe: model 'flux-schnell' cannot run here yet")
    run = card.get_by_role("button", name=f"Run {name}…")
    assert "FAL_KEY" in page.locator(f"#{run.get_attribute('aria-describedby')}").inner_text()


def test_the_pipeline_views_fit_a_phone_and_pass_axe(phone_page: Page, page: Page, panel: Served,
                                                     artifacts_dir: Path) -> None:
    pipeline_id = _saved(panel, {**APPROVED, "name": f"phone-{uuid.uuid4().hex[:6]}"})
    started = httpx.post(f"{panel.url}/api/pipelines/{pipeline_id}/runs", headers=panel.headers,
                         json={"inputs": {"idea": f"a field {uuid.uuid4().hex[:6]}"}})
    run_id = started.json()["run_id"]
    views = {"pipelines-list": "#/pipelines", "pipeline-builder-template": "#/pipelines/new?template=story",
             "pipeline-builder-saved": f"#/pipelines/{pipeline_id}", "pipeline-run": f"#/pipeline-runs/{run_id}"}
    for viewport, shown in (("phone", phone_page), ("desktop", page)):
        for name, hash_ in views.items():
            shown.goto(f"{panel.url}/{hash_}")
            shown.wait_for_load_state("networkidle")
            if name == "pipeline-run":
                expect(shown.get_by_test_id("run-status")).to_have_text("waiting for approval",
                                                                         timeout=RUN_TIMEOUT_MS)
            else:
                expect(shown.get_by_role("heading", level=2)).to_be_visible()
            if viewport == "phone":
                assert_no_horizontal_scroll(shown)
            _no_violations(shown, artifacts_dir, f"{name}-{viewport}")
    httpx.post(f"{panel.url}/api/runs/{run_id}/steps/look/approve", json={"decision": "reject"},
               headers=panel.headers)
    wait_until(lambda: repo.get_run(run_id).status == "cancelled", 60, "the rejected run to end")


@pytest.fixture(scope="module")
def fal_panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FalEmulator]]:
    """`reelflow serve` as a user starts it, in its own process, with fal-client pointed at the fal emulator."""
    folder = tmp_path_factory.mktemp("fal-panel")
    with FalEmulator(cert_dir=folder / "certs", config=EmulatorConfig(processing_s=0.3)) as emu:
        emu.configure(account_concurrency=16)
        port = prefect_server.free_port(0, "the panel on fal")
        env = {**fal_env(emu), "PYTHONPATH": str(ROOT)}
        with (folder / "serve.log").open("wb") as log:
            serve = subprocess.Popen([sys.executable, "-m", "reelflow.cli.main", "serve", "--port", str(port),
                                      "--via", "local"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: answers(base), 60, "reelflow serve to answer")
            yield base, emu
        finally:
            serve.terminate()
            serve.wait(30)


def test_on_fal_a_redo_from_the_panel_renders_and_pays_the_judged_step_once_more(
        browser: Browser, fal_panel: tuple[str, FalEmulator], artifacts_dir: Path) -> None:
    base, emu = fal_panel
    name = f"fal-redo-{uuid.uuid4().hex[:6]}"
    definition = {"name": name, "inputs": {"idea": {"type": "text", "default": "a pier at dawn"}}, "steps": [
        {"id": "keyframe", "kind": "generate_image", "model": "flux-schnell", "prompt": "$inputs.idea",
         "params": {"seed": 7}},
        {"id": "look", "kind": "approve", "target": "keyframe", "timeout": 600},
        {"id": "clip", "kind": "image_to_video", "model": "wan-2.5-i2v", "image": "$look.image",
         "prompt": "$inputs.idea", "params": {"duration": 5, "resolution": "480p", "seed": 1}}]}
    saved = httpx.post(f"{base}/api/pipelines", json={"definition": definition}, headers=auth_headers())
    assert saved.status_code == 201 and saved.json()["warnings"] == [], saved.text
    token = read_api_token()
    assert token
    page = browser.new_context(viewport=DESKTOP).new_page()
    try:
        page.goto(login_url(base, token))
        # The panel renders once it has traded the token for the session cookie; leaving the page before then
        # aborts that request and the next page is logged out.
        expect(page.get_by_role("heading", name="Make a video")).to_be_visible()
        run_id = _run_saved_and_redo(page, base, name, "a pier at dawn", "99")

        def redone() -> dict[str, Any] | None:
            graph = httpx.get(f"{base}/api/runs/{run_id}/graph", headers=auth_headers()).json()
            steps = {s["id"]: s for s in graph["steps"]}
            keyframe = steps["keyframe"]["items"][0]
            return graph if keyframe["seed"] == 99 and steps["look"]["status"] == "waiting" else None

        wait_until(redone, 60, "the keyframe rendered again with seed 99 and the approval asked again")
        expect(page.get_by_test_id("run-status")).to_have_text("waiting for approval", timeout=RUN_TIMEOUT_MS)
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.get_by_test_id("run-status")).to_have_text("completed", timeout=RUN_TIMEOUT_MS)
        expect(page.get_by_test_id("node-clip")).to_contain_text("$0.25")
        screenshot(page, artifacts_dir, "pipeline-run-fal-completed")
        rows = store_rows("SELECT name, status, provider_job_id, cost_micro_usd, detail FROM steps WHERE run_id = ? "
                          "ORDER BY id", run_id)
        assert emu.stats()["submits"]["by_endpoint"] == {FLUX: 2, WAN: 1}, rows
    finally:
        page.context.close()
