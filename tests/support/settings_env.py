"""Fixtures for tests that change REELFLOW_* settings under a running server (a pytest plugin of tests/conftest.py).

``env(NAME=value, ...)`` sets variables for one test, and the server sees them through ``reload_settings()``;
``gpu_block`` gives the test a GPU block name of its own, so other tests' 'default' block is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from reelflow.settings import reload_settings

SetEnv = Callable[..., None]


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetEnv]:
    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        reload_settings()

    yield set_env
    monkeypatch.undo()
    reload_settings()


@pytest.fixture()
def gpu_block(env: SetEnv, request: pytest.FixtureRequest) -> str:
    name = "blk-" + request.node.name.lower().replace("_", "-")[:40]
    env(REELFLOW_GPU_BLOCK=name)
    return name
