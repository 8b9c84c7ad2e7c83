"""``enhance_prompt``'s job: a prompt rewritten by the local template (free) or a language model on fal.

The fal request goes through ``run_fal_job`` like every paid fal job: one submit, its request id
stored before waiting, resumed by that id after a crash or retry, cancelled with the run. The cost
is the one fal reports for the tokens used (unknown, never zero, when it reports none).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from reelflow.core.catalog import load_catalog
from reelflow.errors import FalRequestError, ModelUnavailableError
from reelflow.jobs.fal import FalRequest, run_fal_job
from reelflow.jobs.step import tracked_step
from reelflow.providers.fal.llm import llm_arguments, parse_llm_output
from reelflow.providers.local_text import enhance_prompt_locally

STEP = "enhance_prompt"


async def run_enhance_prompt(run_id: str, model_id: str, prompt: str, *, style: str | None = None,
                             seed: int | None = None) -> str:
    """The rewritten prompt. ``seed`` is recorded but not sent: neither the template nor fal's LLM endpoint takes
    one (a different seed is still a different step for the pipeline's idempotency key)."""
    model = load_catalog().get(model_id, kind="llm")
    if model.backend == "local":
        async with tracked_step(run_id, STEP, "local", endpoint=model.endpoint) as step:
            text = await asyncio.to_thread(enhance_prompt_locally, prompt, style=style)
            step.cost_usd = Decimal(0)
            step.detail = {"text": text, "style": style, "seed": seed}
            await step.progress(1.0, "prompt enhanced", force=True)
        return text
    if model.backend != "fal":
        raise ModelUnavailableError(model.id, [f"the '{model.backend}' backend cannot run language models"])

    async def arguments() -> dict[str, Any]:
        return llm_arguments(model, prompt, style=style)

    llm_arguments(model, prompt, style=style)  # a bad prompt fails here, before a step or a slot is taken
    output = await run_fal_job(FalRequest(run_id=run_id, step=STEP, model=model, cost_usd=model.price.estimate(),
                                          arguments=arguments, parse=parse_llm_output))
    if output.text is None:
        raise FalRequestError("fal's language model gave no text", request_id=output.provider_job_id)
    return output.text
