"""The OpenAPI schema fuzzed by schemathesis (a bounded number of cases per operation): never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.runs.launcher import Launcher
from reelflow.settings import reload_settings
from reelflow.web import create_app
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, VastEmulator

CASES_PER_OPERATION = 25
TOKEN = "fuzz-token"
launcher = Launcher(max_parallel=1)
app = create_app(launcher=launcher, bind_host="testserver")  # the name the ASGI test client sends as Host
# The list-wide event stream never ends on its own; everything else is fuzzed.
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/api/events")


@pytest.fixture(scope="module", autouse=True)
def hermetic() -> Iterator[None]:
    """Auth on (schemathesis also checks writes without the token get 401), private URLs refused (so nothing
    generated is fetched from this machine), and a GPU block of its own whose vast.ai API is the emulator."""
    with pytest.MonkeyPatch.context() as patch, VastEmulator() as vast:
        patch.setenv("REELFLOW_API_TOKEN", TOKEN)
        patch.setenv("REELFLOW_ALLOW_PRIVATE_URLS", "false")
        patch.setenv("REELFLOW_GPU_BLOCK", "web-fuzz")
        reload_settings()
        GpuEndpoint(provider="vastai", vastai_api_url=vast.url, vastai_api_key=API_KEY,
                    vastai_instance_id=DEFAULT_INSTANCE_ID).save("web-fuzz", overwrite=True)
        yield
    reload_settings()
    launcher.shutdown()


# Every other check runs; positive_data_acceptance is left out because what is valid depends on the catalog
# (model ids, ranges per model), which a JSON schema cannot express: such requests get 4xx with the field.
@schema.parametrize()
@settings(max_examples=CASES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=[positive_data_acceptance])
