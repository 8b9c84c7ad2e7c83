"""Every curated fal entry against the stored copy of its endpoint's OpenAPI input schema
(tests/fixtures/fal_schemas/, refreshed by scripts/refresh_fal_schemas.py): a field fal renamed or a choice
it dropped fails here, not on a user's paid run. Per model: the arguments a typical spec sends fit the
schema (field names, duration format, resolution names, image field) and the price matches the table."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reelflow.core.catalog import builtin_catalog
from reelflow.core.domain import ImageParams, VideoParams
from reelflow.errors import SpecError
from reelflow.providers import fal
from reelflow.providers.fal.openapi import drift, input_fields, suggested
from tests.emulators.fal.schemas import check_body

FIXTURES = Path(__file__).parent / "fixtures" / "fal_schemas"
IMG, END = "data:image/png;base64,AAAA", "data:image/png;base64,BBBB"
FAL_MODELS = [m for m in builtin_catalog().models if m.backend == "fal" and m.kind in ("i2v", "t2v", "t2i", "i2i")]


def schema(endpoint: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{endpoint}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("model", FAL_MODELS, ids=lambda m: m.id)
def test_every_curated_fal_model_matches_its_stored_schema(model: Any) -> None:
    assert (FIXTURES / f"{model.endpoint}.json").is_file(), f"no stored schema for {model.endpoint}"
    assert drift(model, schema(model.endpoint)) == []
    assert model.price.source, f"{model.id}: the price must say where it was read"
    assert model.source, f"{model.id}: the entry must say where its schema was read"


def test_a_renamed_field_or_a_dropped_choice_fails_the_check() -> None:
    model = builtin_catalog().get("kling-2.5-turbo-pro-i2v")
    doc = schema(model.endpoint)
    renamed = copy.deepcopy(doc)
    props = renamed["components"]["schemas"]["Input"]["properties"]
    props["end_image_url"] = props.pop("tail_image_url")
    assert any("sends 'tail_image_url'" in p for p in drift(model, renamed)), drift(model, renamed)

    fewer = copy.deepcopy(doc)
    fewer["components"]["schemas"]["Input"]["properties"]["duration"]["enum"] = ["5"]
    assert any("duration=['10']" in p for p in drift(model, fewer)), drift(model, fewer)

    required = copy.deepcopy(doc)
    required["components"]["schemas"]["Input"]["required"].append("cfg_scale")
    assert any("never sends 'cfg_scale'" in p for p in drift(model, required))


def _video(model_id: str, **changes: Any) -> tuple[dict[str, Any], float | None]:
    model = builtin_catalog().get(model_id)
    inputs = model.inputs
    params = VideoParams(**{"prompt": "a slow pan", "negative_prompt": "blur", "seed": 7,
                            "duration_s": inputs.default_duration, "resolution": inputs.default_resolution,
                            **changes})
    image = None if model.kind == "t2v" else IMG
    end = END if inputs.end_image != "unused" else None
    args = fal.build_arguments(model, params, image, end)
    assert check_body(input_fields(schema(model.endpoint), model.endpoint), args) == [], args
    return args, model.price.estimate(seconds=params.duration_s, resolution=params.resolution, audio=params.audio)


VIDEO_CASES = [
    ("veo-2-i2v", {"duration_s": 7.0}, {"image_url": IMG, "duration": "7s"}, 3.50),
    ("kling-2.1-standard-i2v", {"duration_s": 10.0}, {"image_url": IMG, "duration": "10", "negative_prompt": "blur"},
     0.56),
    ("kling-2.5-turbo-pro-i2v", {}, {"image_url": IMG, "tail_image_url": END, "duration": "5"}, 0.35),
    ("kling-3-pro-i2v", {"audio": True}, {"start_image_url": IMG, "end_image_url": END, "generate_audio": True},
     1.68),
    ("veo-3.1-fast-i2v", {"duration_s": 4.0}, {"image_url": IMG, "duration": "4s", "resolution": "720p",
                                               "generate_audio": False, "seed": 7}, 0.40),
    ("veo-3.1-fast-i2v", {"duration_s": 4.0, "audio": True}, {"generate_audio": True}, 0.60),
    ("veo-3.1-i2v", {"resolution": "4k"}, {"resolution": "4k", "duration": "8s"}, 3.20),
    ("veo-3.1-flf", {"duration_s": 6.0}, {"first_frame_url": IMG, "last_frame_url": END, "duration": "6s"}, 1.20),
    ("veo-3.1-t2v", {"audio": True}, {"prompt": "a slow pan", "generate_audio": True, "duration": "8s"}, 3.20),
    ("veo-3.1-fast-t2v", {}, {"generate_audio": False}, 0.80),
    ("wan-2.2-i2v-fal", {"resolution": "480p"}, {"image_url": IMG, "end_image_url": END, "resolution": "480p",
                                                 "seed": 7}, 0.05),
    ("hailuo-02-standard-i2v", {"duration_s": 10.0}, {"image_url": IMG, "end_image_url": END, "duration": "10",
                                                      "resolution": "768P"}, 0.45),
    ("wan-2.5-i2v", {"resolution": "480p"}, {"image_url": IMG, "duration": "5", "resolution": "480p"}, 0.25),
]


@pytest.mark.parametrize(("model_id", "changes", "expected", "usd"), VIDEO_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(VIDEO_CASES)])
def test_video_arguments_fit_the_schema_and_the_price_matches(model_id: str, changes: dict[str, Any],
                                                              expected: dict[str, Any], usd: float) -> None:
    args, cost = _video(model_id, **changes)
    assert {k: args.get(k) for k in expected} == expected
    assert cost == Decimal(str(usd))


def test_text_to_video_sends_no_image_and_the_veo_2_entry_sends_no_unknown_input() -> None:
    args, _ = _video("veo-3.1-t2v")
    assert not {"image_url", "first_frame_url", "start_image_url"} & set(args)
    veo2, _ = _video("veo-2-i2v")
    assert set(veo2) == {"prompt", "image_url", "duration"}, "Veo 2 takes no resolution, seed or audio"


IMAGE_CASES = [
    ("flux-2-dev", {"image_size": {"width": 1024, "height": 768}, "seed": 3, "num_images": 1}, 0.012 * 1),
    ("nano-banana", {"seed": 3, "num_images": 1}, 0.039),
    ("flux-kontext-pro", {"image_url": IMG, "seed": 3, "num_images": 1}, 0.04),
    ("flux-kontext-dev", {"image_url": IMG, "seed": 3}, 0.025),
    ("nano-banana-edit", {"image_urls": [IMG], "seed": 3}, 0.039),
]


@pytest.mark.parametrize(("model_id", "expected", "usd"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_image_arguments_fit_the_schema_and_the_price_matches(model_id: str, expected: dict[str, Any],
                                                              usd: float) -> None:
    model = builtin_catalog().get(model_id)
    params = ImageParams(prompt="make it dusk", width=1024, height=768, seed=3)
    args = fal.build_arguments(model, params, IMG if model.kind == "i2i" else None)
    assert check_body(input_fields(schema(model.endpoint), model.endpoint), args) == [], args
    assert {k: args.get(k) for k in expected} == expected and args["prompt"] == "make it dusk"
    assert model.price.estimate(megapixels=0.786432) == Decimal(str(usd))


def test_models_that_cannot_are_refused_an_end_image_or_audio() -> None:
    catalog = builtin_catalog()
    params = VideoParams(prompt="p", duration_s=5, seed=1)
    with pytest.raises(SpecError, match="takes no end image") as refused:
        fal.build_arguments(catalog.get("wan-2.5-i2v"), params, IMG, END)
    assert refused.value.field == "end_image"
    with pytest.raises(SpecError, match="cannot add audio"):
        fal.build_arguments(catalog.get("veo-2-i2v"), params.model_copy(update={"audio": True}), IMG)
    with pytest.raises(SpecError, match="needs an end image"):
        fal.build_arguments(catalog.get("veo-3.1-flf"), params.model_copy(update={"duration_s": 8.0}), IMG)


def test_suggested_fields_read_from_a_schema() -> None:
    found = suggested(schema("fal-ai/veo3.1/first-last-frame-to-video"), "fal-ai/veo3.1/first-last-frame-to-video",
                      "i2v")
    assert found["image_field"] == "first_frame_url" and found["end_image_field"] == "last_frame_url"
    assert (found["durations"], found["duration_format"]) == ([4.0, 6.0, 8.0], "{}s")
    assert found["resolutions"] == ["720p", "1080p", "4k"] and found["audio_field"] == "generate_audio"
