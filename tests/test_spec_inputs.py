"""The spec's new inputs: a text-to-video model without a start image, end_image and audio, checked against the
catalog; a spec without them keeps the idempotency key it had before they existed."""

from __future__ import annotations

import hashlib

import pytest

from reelflow.core.spec import parse_spec
from reelflow.errors import SpecError

BASE = {"model": "kling-2.1-master-i2v", "image": "/x.png", "prompt": "p"}


def test_a_spec_without_the_new_inputs_keeps_its_key() -> None:
    spec = parse_spec(BASE)
    assert "end_image" not in spec.canonical_json() and "audio" not in spec.canonical_json()
    old = hashlib.sha256(spec.canonical_json().encode())
    old.update(b"\0" + b"abc")
    assert spec.idempotency_key("abc") == old.hexdigest(), "the key is computed as before end images existed"


def test_the_end_image_bytes_and_audio_change_the_key() -> None:
    flf = parse_spec({**BASE, "model": "kling-2.5-turbo-pro-i2v", "end_image": "/y.png"})
    assert flf.idempotency_key("abc", "e1") != flf.idempotency_key("abc", "e2")
    quiet = parse_spec({"model": "veo-3.1-t2v", "prompt": "p", "seed": 1})
    loud = parse_spec({"model": "veo-3.1-t2v", "prompt": "p", "seed": 1, "audio": True})
    assert quiet.idempotency_key(None) != loud.idempotency_key(None)


@pytest.mark.parametrize(("spec", "field", "text"), [
    ({"model": "veo-3.1-t2v", "prompt": "p", "image": "/x.png"}, "image", "text-to-video: it takes no start image"),
    ({"model": "veo-3.1-t2v", "prompt": "p", "image_prompt": "a cat"}, "image_prompt", "takes no start image"),
    ({"model": "veo-3.1-t2v"}, "prompt", "must not be empty"),
    ({**BASE, "end_image": "/y.png"}, "end_image", "takes no end image; models that take one: wan-2.2-i2v-fal"),
    ({**BASE, "model": "veo-3.1-flf"}, "end_image", "needs an end image"),
    ({**BASE, "audio": True}, "audio", "cannot add audio; models that can: kling-3-pro-i2v"),
    ({**BASE, "model": "wan-2.5-i2v", "image": None}, "image", "an input is needed"),
])
def test_inputs_a_model_cannot_take_are_refused(spec: dict, field: str, text: str) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec({k: v for k, v in spec.items() if v is not None})
    assert refused.value.field == field and text in refused.value.message, refused.value


def test_a_text_to_video_spec_needs_no_image() -> None:
    spec = parse_spec({"model": "veo-3.1-t2v", "prompt": "waves", "audio": True})
    assert spec.image is None and spec.image_prompt is None and spec.audio is True and spec.seed is not None
