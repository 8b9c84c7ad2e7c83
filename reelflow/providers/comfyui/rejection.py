"""Turning a POST /prompt refusal (400, or 200 with node_errors) into the right error."""

from __future__ import annotations

from typing import Any

from reelflow.errors import ComfyMissingModelsError, ComfyPromptRejectedError, ProviderError
from reelflow.providers.comfyui.graph import MODEL_INPUT_FOLDERS, ModelRef


def missing_models(node_errors: dict[str, Any]) -> list[ModelRef]:
    """``value_not_in_list`` on a model input of any node: files the server does not have."""
    refs = []
    for node_id, entry in node_errors.items():
        for error in (entry or {}).get("errors") or []:
            extra = error.get("extra_info") or {}
            input_name = extra.get("input_name")
            folder = MODEL_INPUT_FOLDERS.get(str(input_name))
            if error.get("type") == "value_not_in_list" and folder:
                refs.append(ModelRef(folder, str(extra.get("received_value")), str(node_id), str(input_name)))
    return refs


def rejection_error(url: str, body: Any, *, partial: bool = False) -> ProviderError:
    """The error for a refused prompt body (the 400 JSON, or the 200 JSON of a partial acceptance)."""
    if not isinstance(body, dict):
        return ComfyPromptRejectedError("http_400", str(body)[:500])
    node_errors = body.get("node_errors") or {}
    refs = missing_models(node_errors)
    if refs:
        return ComfyMissingModelsError(url, refs)
    error = body.get("error") or {}
    if partial:
        return ComfyPromptRejectedError("partially_accepted",
                                   "some output nodes failed validation and were dropped", node_errors)
    message = error.get("message") or ""
    if error.get("details"):
        message = f"{message} ({error['details']})"
    return ComfyPromptRejectedError(str(error.get("type") or "unknown"), message, node_errors)
