"""Fixtures of the fal pipeline tests: one fal emulator per module (reset for each test), the environment that
points a flow process's fal-client at it, and an input photo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.fal import EmulatorConfig, FalEmulator
from tests.support.fal_pipeline import Env, fal_env
from tests.support.files import make_image


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalEmulator]:
    with FalEmulator(cert_dir=tmp_path_factory.mktemp("fal-certs"), config=EmulatorConfig(processing_s=0.5)) as emu:
        yield emu


@pytest.fixture()
def emu(emulator: FalEmulator) -> FalEmulator:
    """The emulator, reset, with an account concurrency far above the ``fal`` limit (so only reelflow limits)."""
    emulator.reset()
    emulator.configure(account_concurrency=16)
    return emulator


@pytest.fixture()
def env(emu: FalEmulator) -> Env:
    return fal_env(emu)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tmp_path_factory.mktemp("fal-img") / "photo.png", size=(480, 320))
