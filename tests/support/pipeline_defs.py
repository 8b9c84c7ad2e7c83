"""Small pipeline definitions the tests share: a keyframe, a person's look at it, and the clip(s) made from it."""

from __future__ import annotations

from typing import Any


def keyframe_look_clip(idea: str = "a lighthouse on a cliff at dusk", **top: Any) -> dict[str, Any]:
    """Local keyframe → approval of it → one local clip of the approved image (tiny, renders in about a second)."""
    return {**top,
            "inputs": {"idea": {"type": "text", "default": idea}},
            "steps": [
                {"id": "keyframe", "kind": "generate_image", "model": "local-procedural-image",
                 "prompt": "$inputs.idea", "params": {"resolution": "320x192"}},
                {"id": "look", "kind": "approve", "target": "keyframe", "timeout": 600},
                {"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$look.image",
                 "prompt": "$inputs.idea", "params": {"frames": 6, "fps": 6, "resolution": "128x96"}},
            ]}


def keyframe_look_shots(name: str, idea: str) -> dict[str, Any]:
    """Local keyframe → approval → one local clip per shot of the list input ``shots`` (two by default)."""
    return {"name": name,
            "inputs": {"idea": {"type": "text", "default": idea},
                       "shots": {"type": "texts", "default": ["one", "two"]}},
            "steps": [
                {"id": "keyframe", "kind": "generate_image", "model": "local-procedural-image",
                 "prompt": "$inputs.idea", "params": {"resolution": "320x240"}},
                {"id": "look", "kind": "approve", "target": "keyframe", "timeout": 600},
                {"id": "shots", "kind": "image_to_video", "model": "local-kenburns", "for_each": "$inputs.shots",
                 "image": "$look.image", "prompt": "$item",
                 "params": {"duration": 1, "fps": 8, "resolution": "160x120"}},
            ]}
