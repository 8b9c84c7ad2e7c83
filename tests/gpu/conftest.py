"""Fixtures of the GPU tests: ComfyUI and vast.ai emulators, short polls, an input image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reelflow.settings import reload_settings
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.vastai import VastEmulator
from tests.support.files import make_image
from tests.support.gpu import FAST_ENV


@pytest.fixture()
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Short poll periods through the environment (subprocesses inherit them); modules opt in with
    ``pytestmark = pytest.mark.usefixtures("fast_polls")``."""
    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)
    reload_settings()
    yield
    monkeypatch.undo()
    reload_settings()


@pytest.fixture(scope="module")
def comfy() -> Iterator[ComfyEmulator]:
    with ComfyEmulator(job_seconds=0.4, progress_steps=2, history_delay_s=0.05) as emu:
        yield emu


@pytest.fixture()
def fresh_comfy(comfy: ComfyEmulator) -> ComfyEmulator:
    """The module's emulator with default knobs and zeroed counters."""
    defaults = type(comfy.knobs)()
    comfy.configure(**{k: getattr(defaults, k) for k in vars(defaults)})
    comfy.configure(job_seconds=0.4, progress_steps=2, history_delay_s=0.05)
    comfy.state.dropped.clear()
    comfy.state.errors_raised = 0
    comfy.reset_stats()
    return comfy


@pytest.fixture(scope="module")
def vast() -> Iterator[VastEmulator]:
    with VastEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tmp_path_factory.mktemp("gpu-img") / "scene.png", size=(320, 200))
