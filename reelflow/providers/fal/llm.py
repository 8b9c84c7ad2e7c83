"""fal's language-model endpoint (``openrouter/router``): the arguments for a prompt rewrite and its answer.

fal's schema: ``prompt`` and ``model`` required (the OpenRouter model id, from the catalog entry's
``fal.fixed``), ``system_prompt``, ``temperature`` (0-2), ``max_tokens``, ``reasoning``; the
result is ``output`` (text) and ``usage`` (``prompt_tokens``, ``completion_tokens``, ``cost`` in USD).
The endpoint takes no seed. The catalog entry's ``fal.fixed`` holds the model, temperature and token limit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reelflow.core.catalog import ModelEntry
from reelflow.core.domain import MediaRef, ProviderOutput
from reelflow.core.money import usd
from reelflow.errors import FalRequestError, SpecError

SYSTEM_PROMPT = (
    "You rewrite prompts for a text-to-video and image-to-video model. Expand the user's idea into one vivid, "
    "concrete prompt of at most 80 words: the subject, the action, the camera movement, the lighting and the "
    "style. Answer with the prompt only: no preamble, no quotes, no markdown.")


def llm_arguments(model: ModelEntry, prompt: str, *, style: str | None = None) -> dict[str, Any]:
    """The JSON body asking ``model`` (kind llm, on fal) to rewrite ``prompt``, in ``style`` when given."""
    if model.backend != "fal" or model.kind != "llm":
        raise SpecError("model", f"{model.id} is a {model.kind} model on {model.backend}, not a language model on fal")
    fixed = model.fal.fixed if model.fal else {}
    if "model" not in fixed:
        raise SpecError("model", f"catalog entry {model.id} names no OpenRouter model in fal.fixed.model")
    subject = " ".join(prompt.split())
    if not subject:
        raise SpecError("prompt", "is empty; give the idea to expand")
    limit = model.inputs.prompt_max_chars
    if limit is not None and len(subject) > limit:
        raise SpecError("prompt", f"is {len(subject)} characters; at most {limit} allowed for {model.id}")
    system = SYSTEM_PROMPT + (f" The style is: {' '.join(style.split())}." if style and style.strip() else "")
    return {"prompt": subject, "system_prompt": system, **fixed}


def _cost(result: dict[str, Any]) -> Decimal | None:
    usage = result.get("usage")
    cost = usage.get("cost") if isinstance(usage, dict) else None
    return usd(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0 else None


def _clean(text: str) -> str:
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


def parse_llm_output(result: dict[str, Any], *, request_id: str | None = None) -> ProviderOutput:
    """``output`` as the text, with the cost fal reports in ``usage.cost`` (None when it reports none)."""
    if not isinstance(result, dict):
        raise FalRequestError(f"fal's language model answered {type(result).__name__}, not an object",
                              request_id=request_id)
    if isinstance(result.get("error"), str) and result["error"]:
        raise FalRequestError(f"fal's language model failed: {result['error']}", request_id=request_id)
    output = result.get("output")
    text = _clean(output) if isinstance(output, str) else ""
    if not text:
        raise FalRequestError(f"fal's language model gave no text (result keys: {sorted(result)})",
                              request_id=request_id)
    return ProviderOutput(media=MediaRef(content_type="text/plain"), role="text", text=text,
                          provider_job_id=request_id, cost_usd=_cost(result))
