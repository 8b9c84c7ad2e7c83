"""The offline prompt "enhancer": a fixed template around the subject. Not an AI model."""

from __future__ import annotations

from reelflow.errors import SpecError

CAMERA = "slow cinematic camera movement, shallow depth of field"
LIGHTING = "soft natural light with gentle contrast"
DEFAULT_STYLE = "photorealistic"
DETAIL = "highly detailed, coherent motion"


def enhance_prompt_locally(prompt: str, *, style: str | None = None) -> str:
    """``<subject>, <camera>, <lighting>, <style> style, <detail>``: the same prompt and style give the same text."""
    subject = " ".join(prompt.split()).rstrip(" .,;:")
    if not subject:
        raise SpecError("prompt", "is empty; the template prompt enhancer needs a subject to expand")
    if style is not None and not style.strip():
        raise SpecError("style", "is empty; give a style (for example 'watercolour') or leave it out")
    chosen = " ".join(style.split()) if style is not None else DEFAULT_STYLE
    return f"{subject}, {CAMERA}, {LIGHTING}, {chosen} style, {DETAIL}"
