"""vast.ai client against the REST + Instance Portal emulator."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from reelflow.errors import ProviderError, TransientProviderError, VastApiError
from reelflow.providers.vastai import Instance, PortLayout, VastClient, discover_service_urls
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN, VastEmulator
from tests.support.cli import ROOT


@pytest.fixture(scope="module")
def emulator() -> Iterator[VastEmulator]:
    with VastEmulator() as emu:
        yield emu


@pytest.fixture()
def emu(emulator: VastEmulator) -> VastEmulator:
    emulator.reset()
    return emulator


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture()
async def vast(emu: VastEmulator, sleeps: Sleeps) -> AsyncIterator[VastClient]:
    async with VastClient(API_KEY, base_url=emu.url, max_attempts=4, sleep=sleeps) as client:
        yield client


async def test_list_and_show_parse_instances(vast: VastClient, emu: VastEmulator) -> None:
    emu.add_instance(5151, running=False, gpu_name="RTX 3090", dph_total=0.2)
    listed = {i.id: i for i in await vast.list_instances()}
    assert set(listed) == {DEFAULT_INSTANCE_ID, 5151}
    running = await vast.show_instance(DEFAULT_INSTANCE_ID)
    assert running.model_copy(update={"uptime_mins": None}) == listed[DEFAULT_INSTANCE_ID].model_copy(
        update={"uptime_mins": None})
    assert running.is_running and running.gpu_name == "RTX 4090" and running.dph_total == 0.42
    assert running.storage_cost == 0.15 and running.gpu_util == 0.0 and running.label == "reelflow"
    assert running.host_port(1111) == str(emu.port) and running.host_port(8188) == "41188"
    stopped = listed[5151]
    assert stopped.actual_status == "exited" and stopped.ports == {} and stopped.uptime_mins is None


async def test_unknown_instance_is_a_clear_error(vast: VastClient) -> None:
    with pytest.raises(VastApiError, match="404") as info:
        await vast.show_instance(999)
    assert info.value.status_code == 404 and "999" in str(info.value)


async def test_start_and_stop_move_through_states(vast: VastClient, emu: VastEmulator) -> None:
    await vast.stop_instance(DEFAULT_INSTANCE_ID)
    stopped = await vast.show_instance(DEFAULT_INSTANCE_ID)
    assert (stopped.actual_status, stopped.intended_status) == ("exited", "stopped")
    await vast.start_instance(DEFAULT_INSTANCE_ID)
    assert (await vast.show_instance(DEFAULT_INSTANCE_ID)).actual_status == "loading"
    assert (await vast.show_instance(DEFAULT_INSTANCE_ID)).actual_status == "running"
    stats = emu.stats()
    assert (stats["start_calls"], stats["stop_calls"]) == (1, 1)


async def test_start_can_stay_scheduling(vast: VastClient, emu: VastEmulator) -> None:
    await vast.stop_instance(DEFAULT_INSTANCE_ID)
    emu.configure(stuck_scheduling=True)
    await vast.start_instance(DEFAULT_INSTANCE_ID)
    inst = await vast.show_instance(DEFAULT_INSTANCE_ID)
    assert inst.actual_status == "scheduling" and "GPU" in (inst.status_msg or "")
    with pytest.raises(ProviderError, match="not running"):
        await discover_service_urls(inst, PORTAL_TOKEN)


async def test_429_is_retried_after_retry_after(vast: VastClient, emu: VastEmulator, sleeps: Sleeps) -> None:
    emu.configure(fail_next=2, retry_after="7")
    assert len(await vast.list_instances()) == 1
    assert sleeps == [7.0, 7.0]
    assert emu.stats()["requests"] == 3


async def test_5xx_backoff_is_bounded(emu: VastEmulator, sleeps: Sleeps) -> None:
    emu.configure(fail_next=3, fail_status=503, retry_after="")
    async with VastClient(API_KEY, base_url=emu.url, max_backoff_s=0.25, sleep=sleeps) as client:
        await client.show_instance(DEFAULT_INSTANCE_ID)
    assert len(sleeps) == 3 and all(0 < s <= 0.25 for s in sleeps)


async def test_retry_after_is_capped(emu: VastEmulator, sleeps: Sleeps) -> None:
    emu.configure(fail_next=1, retry_after="3600")
    async with VastClient(API_KEY, base_url=emu.url, max_backoff_s=2.0, sleep=sleeps) as client:
        await client.list_instances()
    assert sleeps == [2.0]


async def test_retries_give_up_as_transient(vast: VastClient, emu: VastEmulator, sleeps: Sleeps) -> None:
    emu.configure(fail_next=10, fail_status=502)
    with pytest.raises(TransientProviderError, match="502"):
        await vast.list_instances()
    assert emu.stats()["requests"] == 4 and len(sleeps) == 3


async def test_search_quota_429_is_not_retried(vast: VastClient, emu: VastEmulator, sleeps: Sleeps) -> None:
    emu.configure(quota_exceeded_next=1)
    with pytest.raises(VastApiError, match="search_quota_exceeded"):
        await vast.list_instances()
    assert sleeps == [] and emu.stats()["requests"] == 1


async def test_key_never_in_errors_or_reprs(emu: VastEmulator, sleeps: Sleeps) -> None:
    secret = "sk-very-secret-vast-key-123"
    async with VastClient(secret, base_url=emu.url, sleep=sleeps) as client:
        assert secret not in repr(client) and secret not in str(client)
        with pytest.raises(VastApiError) as info:
            await client.list_instances()
        assert info.value.status_code == 401
        text = "".join(traceback.format_exception(info.value)) + repr(info.value)
        assert secret not in text
    async with VastClient(secret, base_url="http://127.0.0.1:9", max_attempts=2, sleep=sleeps) as client:
        with pytest.raises(TransientProviderError) as info:
            await client.list_instances()
        assert secret not in "".join(traceback.format_exception(info.value))


async def test_tunnel_discovery_through_the_portal(vast: VastClient, emu: VastEmulator) -> None:
    urls = await discover_service_urls(await vast.show_instance(DEFAULT_INSTANCE_ID), PORTAL_TOKEN)
    assert urls.comfyui_url == "https://comfy-emu.trycloudflare.com"
    assert urls.swarmui_url == "https://swarm-emu.trycloudflare.com"
    assert urls.portal_url == emu.portal_url
    assert emu.stats()["portal_calls"] == 1


async def test_missing_tunnel_falls_back_to_direct_port(vast: VastClient, emu: VastEmulator) -> None:
    emu.configure(tunnels=[{"targetUrl": "http://localhost:17865", "tunnelUrl": "https://s.trycloudflare.com/"}])
    urls = await discover_service_urls(await vast.show_instance(DEFAULT_INSTANCE_ID), PORTAL_TOKEN)
    assert urls.comfyui_url == "http://127.0.0.1:41188"
    assert urls.swarmui_url == "https://s.trycloudflare.com"


async def test_portal_down_falls_back_to_direct_ports(vast: VastClient, emu: VastEmulator) -> None:
    emu.configure(portal_down=True)
    inst = await vast.show_instance(DEFAULT_INSTANCE_ID)
    urls = await discover_service_urls(inst, PORTAL_TOKEN)
    assert (urls.comfyui_url, urls.swarmui_url) == ("http://127.0.0.1:41188", "http://127.0.0.1:41865")


async def test_portal_rejects_a_wrong_token(vast: VastClient) -> None:
    inst = await vast.show_instance(DEFAULT_INSTANCE_ID)
    with pytest.raises(ProviderError, match="WEB_PASSWORD"):
        await discover_service_urls(inst, "wrong-token")


async def test_custom_port_layout(vast: VastClient, emu: VastEmulator) -> None:
    emu.add_instance(6161, direct_ports={8288: 42288})
    emu.configure(tunnels=[])
    layout = PortLayout(comfyui_internal=18288, comfyui_external=8288)
    urls = await discover_service_urls(await vast.show_instance(6161), PORTAL_TOKEN, layout=layout)
    assert urls.comfyui_url == "http://127.0.0.1:42288"


def test_instance_model_tolerates_real_world_shapes() -> None:
    inst = Instance.model_validate({
        "id": 1, "actual_status": None, "public_ipaddr": " 1.2.3.4\n", "extra": "ignored",
        "ports": {"1111/tcp": [{"HostIp": "0.0.0.0", "HostPort": 40001}], "22/tcp": None},
    })
    assert inst.host_port(1111) == "40001" and inst.host_port(22) is None
    assert inst.direct_url(1111) == "http://1.2.3.4:40001" and not inst.is_running
    assert Instance.model_validate({"id": 2, "ports": [8188]}).ports == {}


def _read_ready(proc: subprocess.Popen[str], marker: str) -> dict[str, object]:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    while True:
        line = lines.get(timeout=30)
        if line.startswith(marker):
            return json.loads(line.split(" ", 1)[1])


def test_emulator_runs_as_a_subprocess() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators.vastai", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready = _read_ready(proc, "VAST_EMULATOR_READY")
        resp = httpx.get(f"{ready['url']}/instances/", headers={"Authorization": f"Bearer {API_KEY}"})
        assert resp.json()["instances"][0]["id"] == DEFAULT_INSTANCE_ID
    finally:
        proc.terminate()
        proc.wait(timeout=15)
