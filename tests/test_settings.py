"""Settings: the Wan 2.2 file names reach the built-in graph, and PREFECT_API_URL is read live."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from reelflow.core.catalog import load_catalog
from reelflow.core.catalog.workflows import WAN22_MODEL, template_for
from reelflow.settings import Settings, prefect_api_url, reload_settings, use_prefect_api


@pytest.fixture()
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    reload_settings()


def test_wan22_file_names_come_from_the_settings(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("REELFLOW_WAN22_HIGH_NOISE_UNET", "wan2.2_i2v_high_noise_14B_fp16.safetensors")
    settings_env.setenv("REELFLOW_WAN22_VAE", "")
    reload_settings()
    graph = template_for(load_catalog().get(WAN22_MODEL)).graph
    assert graph["95"]["inputs"]["unet_name"] == "wan2.2_i2v_high_noise_14B_fp16.safetensors"
    assert graph["96"]["inputs"]["unet_name"] == "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"
    assert graph["90"]["inputs"]["vae_name"] == "wan_2.1_vae.safetensors", "an empty variable keeps the default"


def test_the_prefect_database_url_is_a_secret(settings_env: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://prefect:hunter2@db:5432/prefect"
    settings_env.setenv("REELFLOW_PREFECT_DATABASE_URL", url)
    settings = Settings()
    assert settings.prefect_database_url is not None and settings.prefect_database_url.get_secret_value() == url
    assert "hunter2" not in repr(settings)


def test_the_prefect_api_url_is_read_from_the_environment_on_every_call(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("PREFECT_API_URL", os.environ.get("PREFECT_API_URL", ""))  # the session's, put back after
    use_prefect_api("http://127.0.0.1:1/api")
    assert prefect_api_url() == "http://127.0.0.1:1/api"
    settings_env.setenv("PREFECT_API_URL", "")
    assert prefect_api_url() is None
    settings_env.delenv("PREFECT_API_URL")
    assert prefect_api_url() is None


def test_the_settings_test_puts_the_sessions_prefect_api_back() -> None:
    assert prefect_api_url() not in (None, "http://127.0.0.1:1/api")
