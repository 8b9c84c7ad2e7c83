"""``enhance_prompt`` on fal's language-model endpoint, against the fal emulator: a user's script in its own process,
one submit, the cost fal reports recorded, and a killed process resumed by the stored request id."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest

from reelflow.core.catalog import load_catalog
from reelflow.core.money import usd
from reelflow.errors import FalRequestError, SpecError
from reelflow.providers.fal.llm import llm_arguments, parse_llm_output
from tests.emulators.fal import FalEmulator
from tests.emulators.fal.llm import llm_result
from tests.support.cli import ROOT
from tests.support.fal_pipeline import Env, kill_group
from tests.support.polling import wait_until
from tests.support.store import step_row, store_rows

MODEL = "gemini-2.5-flash-llm"
ENDPOINT = "openrouter/router"
SCRIPT = """
import asyncio, json, sys
from prefect import flow
from reelflow.jobs.text import run_enhance_prompt
from reelflow.store import repo

MODEL = "gemini-2.5-flash-llm"
run_id, prompt = sys.argv[1], sys.argv[2]
if repo.find_run(run_id) is None:
    repo.create_run(run_id=run_id, idempotency_key="llm-" + run_id, spec={}, model_id=MODEL, backend="fal")

@flow(name="enhance-prompt")
async def enhance() -> str:
    return await run_enhance_prompt(run_id, MODEL, prompt, style="film noir", seed=7)

print("RESULT " + json.dumps(asyncio.run(enhance())), flush=True)
"""


def _start(env: Env, run_id: str, prompt: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, run_id, prompt], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _release_dead_slots(env: Env, run_id: str) -> None:
    """What ``reelflow resume`` does first for a dead process: give back the fal slot it held, which the tests
    after this one need (the session's Prefect server keeps a lease until it expires)."""
    script = ("import asyncio, sys\nfrom reelflow.runs.resume import release_dead_slots\n"
              "asyncio.run(release_dead_slots(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", script, run_id], cwd=ROOT, env=env, text=True, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def _result(process: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, f"script failed ({process.returncode}):\n{out}\n{err[-4000:]}"
    return json.loads(lines[-1].removeprefix("RESULT "))


def _only_job(emu: FalEmulator) -> tuple[str, dict[str, Any]]:
    """The one request the emulator saw (its id and summary); fails if it saw another submit."""
    stats = emu.stats()
    assert stats["submits"] == {"total": 1, "by_endpoint": {ENDPOINT: 1}}
    (job_id, job), = stats["jobs"].items()
    return job_id, job


def test_enhance_prompt_on_fal_submits_once_and_records_the_reported_cost(emu: FalEmulator, env: Env) -> None:
    run_id = uuid.uuid4().hex
    text = _result(_start(env, run_id, "a lighthouse   on a cliff at dusk"))
    assert text.startswith("a lighthouse on a cliff at dusk, rendered by google/gemini-2.5-flash")

    job_id, _ = _only_job(emu)
    sent = emu.state.jobs[job_id].arguments
    assert sent["model"] == "google/gemini-2.5-flash" and sent["prompt"] == "a lighthouse on a cliff at dusk"
    assert "film noir" in sent["system_prompt"] and "seed" not in sent
    row = step_row(run_id, "enhance_prompt")
    assert row["status"] == "completed" and row["job"] == job_id
    full = llm_arguments(load_catalog().get(MODEL), "a lighthouse on a cliff at dusk", style="film noir")
    assert row["cost"] == usd(llm_result(full)["usage"]["cost"]) > 0, "the reported cost, to the micro-dollar"


def test_a_killed_enhance_prompt_is_resumed_by_its_request_id_not_submitted_again(emu: FalEmulator,
                                                                                   env: Env) -> None:
    emu.configure(processing_s=600)
    run_id = uuid.uuid4().hex
    first = _start(env, run_id, "a gull crosses the light")
    wait_until(lambda: store_rows("SELECT provider_job_id FROM steps WHERE run_id = ? AND name = 'enhance_prompt' "
                                  "AND provider_job_id IS NOT NULL", run_id), 120, "the request id in the store")
    wait_until(lambda: emu.stats()["by_status"].get("IN_PROGRESS"), 60, "the request to run at fal")
    kill_group(first, signal.SIGKILL)
    job_id, _ = _only_job(emu)
    assert emu.finish_running() == 1
    _release_dead_slots(env, run_id)

    text = _result(_start(env, run_id, "a gull crosses the light"))
    assert "a gull crosses the light" in text
    assert _only_job(emu)[0] == job_id, "the second process must poll the stored request, not submit again"
    row = step_row(run_id, "enhance_prompt")
    assert row["status"] == "completed" and row["job"] == job_id and row["cost"] is not None


def test_llm_arguments_follow_fals_schema_and_refuse_bad_prompts() -> None:
    model = load_catalog().get(MODEL, kind="llm")
    args = llm_arguments(model, "waves crash below")
    assert args["prompt"] == "waves crash below" and args["model"] == "google/gemini-2.5-flash"
    assert 0 <= args["temperature"] <= 2 and args["max_tokens"] > 0 and args["system_prompt"]
    with pytest.raises(SpecError) as caught:
        llm_arguments(model, "   ")
    assert caught.value.field == "prompt"
    with pytest.raises(SpecError, match="at most 8000"):
        llm_arguments(model, "x" * 8001)
    with pytest.raises(SpecError, match="not a language model on fal"):
        llm_arguments(load_catalog().get("local-template-prompt"), "x")


def test_llm_output_is_the_text_with_the_reported_cost_and_an_empty_answer_is_an_error() -> None:
    parsed = parse_llm_output({"output": ' "a slow dolly over the sea" ', "usage": {"cost": 0.00042}},
                              request_id="r1")
    assert (parsed.text, parsed.cost_usd, parsed.provider_job_id, parsed.role) == (
        "a slow dolly over the sea", Decimal("0.00042"), "r1", "text")
    assert parse_llm_output({"output": "x", "usage": {}}).cost_usd is None  # unknown, not free
    for bad in ({"output": ""}, {"usage": {"cost": 1}}, {"output": "x", "error": "model overloaded"}):
        with pytest.raises(FalRequestError):
            parse_llm_output(bad, request_id="r2")
