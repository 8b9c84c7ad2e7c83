"""A vast.ai REST API + Instance Portal emulator on 127.0.0.1, with fault knobs and counters.

One server: the API under ``/api/v0`` and the portal at the root, so an instance's ``1111/tcp`` port
is the server's own port. In a test: ``with VastEmulator() as emu`` (``emu.url`` is the API base,
``emu.portal_url``, ``emu.config``, ``emu.stats()``). As a process: ``python -m
tests.emulators.vastai --port P`` prints ``VAST_EMULATOR_READY {json}`` when it serves.
Knobs are also settable over HTTP: ``GET|POST /_admin/config``, ``POST /_admin/reset``, ``GET /_admin/stats``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.emulators.common.admin import admin_routes, apply_knobs
from tests.emulators.common.server import Emulator, ServerThread
from tests.emulators.common.standalone import parse_config, serve_until_signalled

API_KEY = "vast-emulator-key"
PORTAL_TOKEN = "portal-emulator-token"
DEFAULT_INSTANCE_ID = 4242


@dataclass
class VastConfig:
    api_key: str = API_KEY
    portal_token: str = PORTAL_TOKEN
    fail_next: int = 0
    fail_status: int = 429
    retry_after: str = "1"
    quota_exceeded_next: int = 0
    loading_polls: int = 1
    stuck_scheduling: bool = False
    portal_down: bool = False
    tunnels: list[dict[str, str]] = field(default_factory=lambda: [
        {"targetUrl": "http://localhost:18188", "tunnelUrl": "https://comfy-emu.trycloudflare.com"},
        {"targetUrl": "http://localhost:17865", "tunnelUrl": "https://swarm-emu.trycloudflare.com"},
    ])


class VastState:
    def __init__(self, config: VastConfig, port: int) -> None:
        self.config = config
        self.port = port
        self.lock = threading.Lock()
        self.instances: dict[int, dict[str, Any]] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.instances.clear()
            self.counters: dict[str, int] = {"start_calls": 0, "stop_calls": 0, "requests": 0, "throttled": 0,
                                             "unauthorized": 0, "portal_calls": 0}
        self.add_instance(DEFAULT_INSTANCE_ID)

    def add_instance(self, instance_id: int, *, running: bool = True, gpu_name: str = "RTX 4090",
                     dph_total: float = 0.42, gpu_util: float = 0.0, label: str | None = "reelflow",
                     direct_ports: dict[int, int] | None = None, uptime_s: float = 0.0) -> dict[str, Any]:
        ports = {8188: 41188, 7865: 41865, **(direct_ports or {})}
        inst = {"id": instance_id, "gpu_name": gpu_name, "num_gpus": 1, "gpu_ram": 24564,
                "gpu_util": gpu_util,
                "dph_total": dph_total, "dph_base": round(dph_total * 0.9, 4), "storage_cost": 0.15, "disk_space": 40.0,
                "public_ipaddr": "127.0.0.1", "label": label, "_ports": ports, "_started": time.time() - uptime_s,
                "_loading_left": 0, "intended_status": "running" if running else "stopped",
                "actual_status": "running" if running else "exited", "status_msg": None}
        with self.lock:
            self.instances[instance_id] = inst
        return inst

    def public(self, inst: dict[str, Any]) -> dict[str, Any]:
        running = inst["actual_status"] == "running"
        out = {k: v for k, v in inst.items() if not k.startswith("_")}
        ports = {1111: self.port, **inst["_ports"]}
        out["ports"] = {f"{c}/tcp": [{"HostIp": ip, "HostPort": str(h)} for ip in ("0.0.0.0", "::")]
                        for c, h in ports.items()} if running else None
        out["uptime_mins"] = round((time.time() - inst["_started"]) / 60, 3) if running else None
        out["start_date"] = inst["_started"] if running else None
        out["gpu_util"] = inst["gpu_util"] if running else None
        return out

    def observe(self, inst: dict[str, Any]) -> None:
        """A show moves a starting instance one step: loading (n polls), then running or scheduling."""
        if inst["intended_status"] != "running" or inst["actual_status"] == "running":
            return
        if self.config.stuck_scheduling:
            inst.update(actual_status="scheduling", status_msg="waiting for the GPU: another renter has it")
        elif inst["_loading_left"] > 0:
            inst["_loading_left"] -= 1
            inst.update(actual_status="loading", status_msg="pulling image")
        else:
            inst.update(actual_status="running", status_msg="success, running", _started=time.time())

    def set_state(self, inst: dict[str, Any], state: str) -> None:
        if state == "running":
            self.counters["start_calls"] += 1
            if inst["actual_status"] != "running":
                inst.update(intended_status="running", actual_status="loading", status_msg="starting",
                            _loading_left=self.config.loading_polls)
        else:
            self.counters["stop_calls"] += 1
            inst.update(intended_status="stopped", actual_status="exited", status_msg="stopped by user")

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {**self.counters, "instances": {i: self.public(v) for i, v in self.instances.items()}}

    def configure(self, **knobs: Any) -> dict[str, Any]:
        with self.lock:
            return apply_knobs(self.config, knobs)


def _app(state: VastState) -> Starlette:
    def guard(request: Request) -> JSONResponse | None:
        cfg = state.config
        state.counters["requests"] += 1
        if request.headers.get("authorization") != f"Bearer {cfg.api_key}":
            state.counters["unauthorized"] += 1
            return JSONResponse({"success": False, "error": "invalid_user_key", "msg": "bad key"}, 401)
        if cfg.quota_exceeded_next > 0:
            cfg.quota_exceeded_next -= 1
            state.counters["throttled"] += 1
            return JSONResponse({"success": False, "error": "search_quota_exceeded",
                                 "msg": "daily search quota exceeded"}, 429)
        if cfg.fail_next > 0:
            cfg.fail_next -= 1
            state.counters["throttled"] += 1
            return JSONResponse({"success": False, "error": "throttled"}, cfg.fail_status,
                                headers={"Retry-After": cfg.retry_after} if cfg.retry_after else None)
        return None

    def not_found(instance_id: int) -> JSONResponse:
        return JSONResponse({"success": False, "error": "no_such_instance",
                             "msg": f"Instance {instance_id} not found."}, 404)

    async def list_instances(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        with state.lock:
            return JSONResponse({"instances": [state.public(i) for i in state.instances.values()]})

    async def instance(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        instance_id = int(request.path_params["instance_id"])
        body = await request.json() if request.method == "PUT" else {}
        with state.lock:
            inst = state.instances.get(instance_id)
            if inst is None:
                return not_found(instance_id)
            if request.method == "GET":
                state.observe(inst)
                return JSONResponse({"instances": state.public(inst)})
            if body.get("state") in ("running", "stopped"):
                state.set_state(inst, body["state"])
            elif "label" in body:
                inst["label"] = body["label"]
            else:
                return JSONResponse({"success": False, "error": "invalid_args", "msg": "no change"}, 400)
            return JSONResponse({"success": True})

    async def quick_tunnels(request: Request) -> JSONResponse:
        state.counters["portal_calls"] += 1
        if state.config.portal_down:
            return JSONResponse({"detail": "bad gateway"}, 502)
        if request.headers.get("authorization") != f"Bearer {state.config.portal_token}":
            return JSONResponse({"detail": "unauthorized"}, 401)
        return JSONResponse(state.config.tunnels)

    return Starlette(routes=[
        Route("/api/v0/instances/", list_instances, methods=["GET"]),
        Route("/api/v0/instances/{instance_id:int}/", instance, methods=["GET", "PUT"]),
        Route("/get-all-quick-tunnels", quick_tunnels, methods=["GET"]),
        *admin_routes(state.configure, state.stats, {"reset": state.reset}),
    ])


class VastEmulator(Emulator):
    def __init__(self, port: int = 0, config: VastConfig | None = None) -> None:
        self._server_thread: ServerThread | None = None
        self._port = port
        self.config = config or VastConfig()
        self.state: VastState | None = None

    @property
    def port(self) -> int:
        assert self._server_thread is not None, "emulator not started"
        return self._server_thread.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v0"

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return self._state.configure(**knobs)

    def stats(self) -> dict[str, Any]:
        return self._state.stats()

    def reset(self) -> None:
        """Default knobs, fresh counters, only the default instance (running)."""
        self._state.configure(**asdict(VastConfig()))
        self._state.reset()

    def add_instance(self, instance_id: int, **kwargs: Any) -> dict[str, Any]:
        return self._state.add_instance(instance_id, **kwargs)

    @property
    def _state(self) -> VastState:
        assert self.state is not None, "emulator not started"
        return self.state

    def start(self) -> VastEmulator:
        self.state = VastState(self.config, port=0)
        self._server_thread = ServerThread(_app(self.state), self._port, name="vast-emulator")
        self.state.port = self._server_thread.port
        self._server_thread.start()
        return self

    def stop(self) -> None:
        if self._server_thread is not None:
            self._server_thread.stop()


def main(argv: list[str] | None = None) -> None:
    args, config = parse_config(argv, (__doc__ or "").splitlines()[0], VastConfig, skip=("tunnels",))
    serve_until_signalled(
        VastEmulator(port=args.port, config=config), "VAST_EMULATOR_READY",
        lambda emu: {"url": emu.url, "portal_url": emu.portal_url, "port": emu.port, "api_key": config.api_key,
                     "portal_token": config.portal_token, "instance_id": DEFAULT_INSTANCE_ID})

