"""Spec errors a person can act on: the field, what was wrong, what is allowed; absurd numbers are a 422."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reelflow.core.spec import parse_spec
from reelflow.errors import SpecError
from tests.support.web_api import Served, error_of, serve_api

LOCAL = {"model": "local-kenburns", "image": "/nowhere.png"}


@pytest.mark.parametrize(("extra", "field", "says"), [
    ({"resolution": "99999x99999"}, "resolution", "width 64-1920 and height 64-1920"),
    ({"resolution": "100000x100000"}, "resolution", "width 64-1920 and height 64-1920"),
    ({"resolution": "641x480"}, "resolution", "multiples of 2"),
    ({"resolution": "huge"}, "resolution", "width 64-1920"),
    ({"image": None, "image_prompt": "a hill", "image_model": "nope"}, "image_model",
     "unknown image model 'nope'; choose one of: flux-schnell, flux-dev"),
    ({"frames": 10**400}, "frames", "out of range; allowed 1-720"),
    ({"duration": float("inf")}, "duration", "finite"),
])
def test_errors_name_the_field_and_what_is_allowed(extra: dict, field: str, says: str) -> None:
    spec = {k: v for k, v in {**LOCAL, **extra}.items() if v is not None}
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    assert caught.value.field == field and says in caught.value.message, str(caught.value)


def test_no_seed_draws_one_and_a_given_seed_is_kept() -> None:
    seeds = {parse_spec(LOCAL).seed for _ in range(3)}
    assert None not in seeds and len(seeds) == 3
    assert parse_spec({**LOCAL, "seed": 5}).seed == 5
    assert parse_spec({"model": "kling-2.1-master-i2v", "image": "/x.png", "prompt": "p"}).seed is None, \
        "a model that takes no seed gets none"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    served: Served
    with serve_api() as served, httpx.Client(base_url=served.url, timeout=60, headers=served.headers) as http:
        yield http


@pytest.mark.parametrize("path", ["/api/runs", "/api/pipelines"])
def test_a_frame_count_too_big_for_a_float_is_a_422_naming_frames(client: httpx.Client, path: str) -> None:
    spec = {"model": "local-kenburns", "image_prompt": "a hill", "frames": 10**400}
    body = spec if path == "/api/runs" else {"name": "huge", "spec": spec}
    field, message = error_of(client.post(path, json=body), 422)
    assert field in ("frames", "spec.frames") and ("out of range" in message or "1000000" in message), message
