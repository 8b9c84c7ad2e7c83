"""The fal emulator's language-model endpoint (``openrouter/router``): fal's documented input and output shapes.

The answer is made from the prompt (so a test can tell it came back), with token counts by word and a cost
from them at fixed made-up rates, reported in ``usage.cost`` as fal does.
"""

from __future__ import annotations

from typing import Any

LLM_PREFIX = "openrouter/router"
LLM_REQUIRED = ("prompt", "model")
USD_PER_PROMPT_TOKEN = 0.0000003
USD_PER_COMPLETION_TOKEN = 0.0000025


def is_llm(endpoint: str) -> bool:
    return endpoint.startswith(LLM_PREFIX)


def llm_errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each input fal would refuse."""
    errors = [(name, "field required") for name in LLM_REQUIRED if not body.get(name)]
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 2):
        errors.append(("temperature", "ensure this value is between 0 and 2"))
    if "seed" in body:
        errors.append(("seed", "extra fields not permitted"))
    return errors


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
