"""Test session set-up: a private REELFLOW_HOME and one real Prefect server for the whole session.

Environment variables are set, and the server started, as this file is imported: before any test module or
area conftest (``tests/gpu/``, ``tests/fal/``, imported before any ``pytest_configure`` hook runs) imports Prefect,
because Prefect reads its settings when it is imported.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="reelflow-test-"))
os.environ["REELFLOW_HOME"] = str(_SESSION_HOME / "home")
os.environ["REELFLOW_ALLOW_PRIVATE_URLS"] = "true"
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
for _name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
    os.environ.pop(_name, None)

from reelflow.orchestration import prefect_server  # noqa: E402
from reelflow.settings import reload_settings  # noqa: E402
from tests.support.cli import ROOT  # noqa: E402

pytest_plugins = ["tests.support.settings_env", "tests.support.web_api_fixtures", "tests.support.panel_fixtures"]
ARTIFACTS = Path(os.environ.get("REELFLOW_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def _start_server() -> None:
    """One real ``prefect server start``, the way the CLI does it."""
    server = prefect_server.start_server(reload_settings(), port=0)
    os.environ["PREFECT_API_URL"] = server.api_url
    # Registered before Prefect registers its own exit hooks, so it runs after they flush logs.
    atexit.register(_stop_server)


def _stop_server() -> None:
    prefect_server.stop_server(reload_settings())
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


if "PYTEST_XDIST_WORKER" not in os.environ:  # an xdist worker inherits its controller's PREFECT_API_URL
    _start_server()


@pytest.fixture()
def home() -> Path:
    return Path(os.environ["REELFLOW_HOME"])


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
