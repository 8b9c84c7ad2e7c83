"""The served API and a client of it with the auth headers, for the tests of the REST API (a pytest plugin, see
``tests/conftest.py``): one served app per test module, a fresh client per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.web_api import Served, serve_api


@pytest.fixture(scope="module")
def api() -> Iterator[Served]:
    with serve_api() as served:
        yield served


@pytest.fixture()
def client(api: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=60, headers=api.headers) as http:
        yield http
