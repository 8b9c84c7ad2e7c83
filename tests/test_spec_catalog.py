"""Spec validation, catalog data and price estimates (pure functions, no Prefect)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reelflow.core.catalog import load_catalog
from reelflow.core.spec import PipelineSpec, frame_size, parse_spec, video_params
from reelflow.errors import SpecError


def test_catalog_offers_every_promised_model() -> None:
    catalog = load_catalog()
    by_backend = {(m.backend, m.kind) for m in catalog.models}
    assert {("local", "i2v"), ("comfyui", "i2v"), ("fal", "i2v"), ("fal", "t2i")} <= by_backend
    endpoints = {m.endpoint for m in catalog.models}
    assert {"fal-ai/wan-25-preview/image-to-video", "fal-ai/kling-video/v2.1/master/image-to-video",
            "fal-ai/veo3.1/image-to-video", "fal-ai/flux/schnell", "fal-ai/flux/dev"} <= endpoints
    local = catalog.get("local-kenburns")
    assert local.ai is False and "Not an AI model" in local.description


@pytest.mark.parametrize(("model_id", "kwargs", "expected"), [
    ("wan-2.5-i2v", {"seconds": 5, "resolution": "720p"}, 0.5),
    ("wan-2.5-i2v", {"seconds": 10, "resolution": "480p"}, 0.5),
    ("kling-2.1-master-i2v", {"seconds": 10}, 2.8),
    ("veo-3.1-i2v", {"seconds": 8}, 1.6),
    ("flux-dev", {"megapixels": 0.79}, 0.025),
    ("flux-dev", {"megapixels": 1.2}, 0.05),
    ("local-kenburns", {"seconds": 3}, 0.0),
    ("wan-2.2-i2v-comfyui", {"gpu_usd_per_hour": 0.36, "gpu_seconds": 100}, 0.01),
])
def test_price_estimates(model_id: str, kwargs: dict, expected: float) -> None:
    assert load_catalog().get(model_id).price.estimate(**kwargs) == Decimal(str(expected)), "exact, not close"


def test_strict_types_name_the_field() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"model": "local-kenburns", "image": "a.png", "duration": "3"})
    assert caught.value.field == "duration"
    with pytest.raises(SpecError) as caught:
        parse_spec({"model": "local-kenburns", "image": "a.png", "colour": "red"})
    assert caught.value.field == "colour"


def test_exactly_one_image_source() -> None:
    with pytest.raises(SpecError, match="an input is needed"):
        parse_spec({"model": "local-kenburns"})
    with pytest.raises(SpecError, match="not both"):
        parse_spec({"model": "local-kenburns", "image": "a.png", "image_prompt": "a cat"})


def test_wan_frames_follow_4n_plus_1_and_sizes_multiple_of_16() -> None:
    catalog = load_catalog()
    wan = catalog.get("wan-2.2-i2v-comfyui")
    spec = parse_spec({"model": wan.id, "image": "a.png", "prompt": "p", "duration": 5.0})
    params = video_params(spec, wan, (1600, 900), seed=1)
    assert params.frames == 81 and params.fps == 16
    assert params.width % 16 == 0 and params.height % 16 == 0
    assert params.width > params.height
    portrait = frame_size(wan, "480p", (900, 1600))
    assert portrait is not None and portrait[0] < portrait[1]


def test_idempotency_key_depends_on_spec_and_input_bytes() -> None:
    spec = PipelineSpec(model="local-kenburns", image="a.png", prompt="x")
    other = PipelineSpec(model="local-kenburns", image="a.png", prompt="y")
    assert spec.idempotency_key("aa") == spec.idempotency_key("aa")
    assert spec.idempotency_key("aa") != spec.idempotency_key("bb")
    assert spec.idempotency_key("aa") != other.idempotency_key("aa")
