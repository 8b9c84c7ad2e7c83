"""The fal emulator's language-model endpoint (``openrouter/router``): its answer in fal's documented shape (the
body is checked against ``tests/fixtures/fal_schemas/openrouter/router.json`` like every endpoint's).

The answer is made from the prompt (so a test can tell it came back), with token counts by word and a cost
from them at fixed made-up rates, reported in ``usage.cost`` as fal does.
"""

from __future__ import annotations

from typing import Any

LLM_PREFIX = "openrouter/router"
USD_PER_PROMPT_TOKEN = 0.0000003
USD_PER_COMPLETION_TOKEN = 0.0000025


def is_llm(endpoint: str) -> bool:
    return endpoint.startswith(LLM_PREFIX)


def llm_result(arguments: dict[str, Any]) -> dict[str, Any]:
    prompt = str(arguments.get("prompt", ""))
    system = str(arguments.get("system_prompt") or "")
    output = f"{prompt}, rendered by {arguments.get('model')} with sweeping camera and golden light"
    prompt_tokens = len((system + " " + prompt).split())
    completion_tokens = len(output.split())
    cost = round(prompt_tokens * USD_PER_PROMPT_TOKEN + completion_tokens * USD_PER_COMPLETION_TOKEN, 9)
    return {"output": output, "reasoning": None, "partial": False, "error": None,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens, "cost": cost}}
