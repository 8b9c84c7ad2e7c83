"""An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread: how every emulator (and the web tests' API)
listens on a real socket inside the test process."""

from __future__ import annotations

import socket
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal, Self

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_S = 30.0


class _ReadyServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


class ServerThread:
    """``app`` on 127.0.0.1:``port`` (0 picks a free port, known as ``self.port`` before ``start``); over HTTPS
    when ``tls_pem`` (a key + certificate chain file) is given."""

    def __init__(self, app: ASGIApp, port: int = 0, name: str = "emulator", *,
                 lifespan: Literal["on", "off"] = "off", tls_pem: Path | None = None,
                 graceful_shutdown_s: float = 2) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port: int = self._sock.getsockname()[1]
        pem = str(tls_pem) if tls_pem is not None else None
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, ws="websockets-sansio",
                                timeout_graceful_shutdown=graceful_shutdown_s, ssl_certfile=pem, ssl_keyfile=pem)
        self._server = _ReadyServer(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=name, daemon=True)

    def start(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        self._thread.start()
        while not self._server.ready.wait(0.02):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self._thread.name} did not start on port {self.port}")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


class Emulator(ABC):
    """An emulator's life: ``start()`` returns it serving, ``stop()`` ends it, ``with`` does both."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
