"""A fal queue emulator over HTTPS on 127.0.0.1, with fault knobs and counters.

In a test: ``with FalEmulator(port=..., cert_dir=...) as emu`` (``emu.base_host``, ``emu.ca_path``,
``emu.config``, ``emu.stats()``: submits, downloads of each result file, image URLs it fetched as fal
does). As a process: ``python -m tests.emulators.fal --port P --cert-dir D`` prints
``FAL_EMULATOR_READY {json}`` when it serves. Knobs are also settable over HTTP (``GET|POST
/_admin/config``, ``POST /_admin/reset``, ``POST /_admin/finish`` ends the jobs in progress now;
counters at ``GET /_admin/stats``).

fal-client reads its hosts when first imported: choose the port and write the cert first
(``free_port``, ``prepare_fal_env``), then start the process that imports fal_client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import certifi
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common.admin import admin_routes
from tests.emulators.common.server import Emulator, ServerThread
from tests.emulators.common.standalone import parse_config, serve_until_signalled
from tests.emulators.fal.media import MediaStore
from tests.emulators.fal.queue import EmulatorConfig, QueueState

__all__ = ["EmulatorConfig", "FalEmulator", "free_port", "prepare_fal_env"]

EMULATOR_KEY = "emulator-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certs(cert_dir: Path) -> tuple[Path, Path]:
    """CA file and server key+chain file in ``cert_dir`` (made once, reused after)."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    ca_path, server_path = cert_dir / "ca.pem", cert_dir / "server.pem"
    if not (ca_path.exists() and server_path.exists()):
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(server_path))
        ca.cert_pem.write_to_path(str(ca_path))
        bundle = Path(certifi.where()).read_text() + "\n" + ca_path.read_text()
        (cert_dir / "bundle.pem").write_text(bundle)
    return ca_path, server_path


def prepare_fal_env(port: int, cert_dir: Path | str) -> dict[str, str]:
    """Environment for a process that will import fal_client and talk to the emulator on ``port``."""
    make_certs(Path(cert_dir))
    host = f"127.0.0.1:{port}"
    return {"FAL_KEY": EMULATOR_KEY, "FAL_QUEUE_RUN_HOST": host, "FAL_RUN_HOST": f"{host}/run",
            "SSL_CERT_FILE": str(Path(cert_dir) / "bundle.pem"),
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def _app(state: QueueState, media: MediaStore) -> Starlette:
    async def media_file(request: Request) -> Response:
        found = media.get(request.path_params["name"])
        state.count_download(request.path_params["name"])
        return Response(found[0], media_type=found[1]) if found else JSONResponse({"detail": "no such"}, 404)

    async def upload_token(request: Request) -> JSONResponse:
        return JSONResponse(media.token(state.base_url))

    async def upload_file(request: Request) -> JSONResponse:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"detail": "bad token"}, 401)
        content_type = request.headers.get("content-type", "application/octet-stream")
        name = media.put(await request.body(), content_type)
        state.count_upload()
        return JSONResponse({"access_url": f"{state.base_url}/media/{name}"})

    async def queue(request: Request) -> Response:
        return await state.handle(request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def tick() -> None:
            while True:
                state.advance()
                await asyncio.sleep(0.02)

        task = asyncio.create_task(tick())
        yield
        task.cancel()

    return Starlette(lifespan=lifespan, routes=[
        *admin_routes(state.configure, state.stats,
                      {"reset": state.reset, "finish": lambda: {"finished": state.finish_running()}}),
        Route("/media/{name:path}", media_file, methods=["GET"]),
        Route("/storage/auth/token", upload_token, methods=["POST"]),
        Route("/files/upload", upload_file, methods=["POST"]),
        Route("/{path:path}", queue, methods=["GET", "POST", "PUT"]),
    ])


class FalEmulator(Emulator):
    """The emulator served over HTTPS in a background thread."""

    def __init__(self, port: int | None = None, cert_dir: Path | str | None = None,
                 config: EmulatorConfig | None = None) -> None:
        self.port = port or free_port()
        self.cert_dir = Path(cert_dir) if cert_dir else Path(tempfile.mkdtemp(prefix="fal-emu-"))
        self.ca_path, self._server_pem = make_certs(self.cert_dir)
        self.media = MediaStore()
        self.state = QueueState(self.base_url, config or EmulatorConfig(), self.media)
        self._server: ServerThread | None = None

    @property
    def base_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.base_host}"

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    def env(self) -> dict[str, str]:
        return prepare_fal_env(self.port, self.cert_dir)

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return self.state.configure(**knobs)

    def reset(self) -> None:
        self.state.reset()

    def finish_running(self) -> int:
        return self.state.finish_running()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def start(self) -> FalEmulator:
        self._server = ServerThread(_app(self.state, self.media), self.port, name="fal-emulator", lifespan="on",
                                    tls_pem=self._server_pem)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None


def main(argv: list[str] | None = None) -> None:
    def cert_dir(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--cert-dir", type=Path, default=None)

    args, config = parse_config(argv, __doc__.splitlines()[0], EmulatorConfig, extra=cert_dir)
    serve_until_signalled(
        FalEmulator(port=args.port or None, cert_dir=args.cert_dir, config=config), "FAL_EMULATOR_READY",
        lambda emu: {"host": emu.base_host, "base_url": emu.base_url, "ca_path": str(emu.ca_path),
                     "env": emu.env(), "config": asdict(emu.config)})

