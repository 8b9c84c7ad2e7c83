"""Real HTTP servers on loopback for storage tests: moto's S3, a fault-injecting proxy, a file source.

* ``moto_server()`` runs moto's S3 in a thread; ``spawn_moto()`` runs it in its own process (benchmarks, so
  its in-memory objects are not counted against the caller).
* ``FaultProxy`` forwards every request to moto, records each S3 operation, and answers a real S3 error
  (e.g. HTTP 500 ``InternalError``) for chosen operations, a given number of times.
* ``SourceServer`` serves bytes or files (HEAD, Range), can require headers and cut the connection after
  N body bytes, like a flaky provider CDN.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
KEY_ID, SECRET = "testing-key-id", "testing-secret-key"
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect", "server",
               "date"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def s3_client(endpoint: str, **config: Any) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                        aws_secret_access_key=SECRET, config=Config(**config) if config else None)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 in this process, on a free loopback port; yields the endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def spawn_moto(in_memory: bool = False) -> Iterator[str]:
    """moto's S3 in a child process; yields the endpoint URL. ``in_memory`` keeps object bodies in RAM
    instead of moto's default temp-file spooling above 5 MiB (no disk noise in benchmarks)."""
    port = free_port()
    env = {**os.environ, "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(8 << 30)} if in_memory else None
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def s3_operation(method: str, target: str, headers: Any) -> str:
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    copying = "x-amz-copy-source" in headers
    if method == "PUT" and "partNumber" in query:
        return "UploadPartCopy" if copying else "UploadPart"
    if method == "PUT":
        return "CopyObject" if copying else "PutObject"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return {"HEAD": "HeadObject", "GET": "GetObject"}.get(method, method)


@dataclass
class Fault:
    operation: str
    times: int
    status: int = 500
    code: str = "InternalError"
    message: str = "We encountered an internal error. Please try again."


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    """A reverse proxy in front of an S3 server that counts operations and injects S3 error answers."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.operations: list[str] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.server = QuietServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.proxy = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, operation: str, times: int = 1, status: int = 500, code: str = "InternalError",
             message: str = "We encountered an internal error. Please try again.") -> None:
        with self.lock:
            self.faults.append(Fault(operation, times, status, code, message))

    def reset(self) -> None:
        with self.lock:
            self.operations.clear()
            self.faults.clear()

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(self.operations)

    def take(self, operation: str) -> Fault | None:
        with self.lock:
            self.operations.append(operation)
            for fault in self.faults:
                if fault.operation == operation and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = proxy.take(s3_operation(self.command, self.path, self.headers))
        if fault:
            xml = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                   f"<Message>{fault.message}</Message><RequestId>injected</RequestId></Error>").encode()
            self.send_response(fault.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(xml)
            return
        status, reason, headers, answer = self._forward(proxy.upstream, body)
        self.send_response(status, reason)
        for name, value in headers:
            lower = name.lower()
            if lower not in HOP_HEADERS and (lower != "content-length" or self.command == "HEAD"):
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    def _forward(self, upstream: tuple[str, int],
                 body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*upstream, timeout=120)
        try:
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_HEADERS:
                    connection.putheader(name, value)
            connection.endheaders(body or None)
            response = connection.getresponse()
            return response.status, response.reason, response.getheaders(), response.read()
        finally:
            connection.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay


@dataclass
class Blob:
    data: bytes | Path
    content_type: str
    drop_after: int | None = None
    drops: int = 1 << 30
    require: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    @property
    def size(self) -> int:
        return self.data.stat().st_size if isinstance(self.data, Path) else len(self.data)

    def read(self, start: int, length: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
        if isinstance(self.data, bytes):
            view = memoryview(self.data)[start:start + length]
            yield from (view[i:i + chunk] for i in range(0, len(view), chunk))
            return
        with self.data.open("rb") as handle:
            handle.seek(start)
            while length > 0 and (block := handle.read(min(chunk, length))):
                length -= len(block)
                yield block


class SourceServer:
    """An HTTP file server standing in for a provider CDN or ComfyUI's /view."""

    def __init__(self, port: int = 0) -> None:
        self.blobs: dict[str, Blob] = {}
        self.server = QuietServer(("127.0.0.1", port), _SourceHandler)
        self.server.source = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, path: str, data: bytes | Path, content_type: str = "video/mp4", *,
            drop_after: int | None = None, drops: int = 1 << 30,
            require: dict[str, str] | None = None) -> str:
        """Serve ``data`` at ``path``; the first ``drops`` GETs are cut after ``drop_after`` body bytes."""
        self.blobs[urlsplit(path).path] = Blob(data, content_type, drop_after, drops, require or {})
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def start(self) -> SourceServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _SourceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        source: SourceServer = self.server.source  # type: ignore[attr-defined]
        blob = source.blobs.get(urlsplit(self.path).path)
        if blob is None or any(self.headers.get(k) != v for k, v in blob.require.items()):
            self.send_error(404 if blob is None else 401)
            return
        start, end = _byte_range(self.headers.get("Range"), blob.size)
        self.send_response(206 if self.headers.get("Range") else 200)
        self.send_header("Content-Type", blob.content_type)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if self.headers.get("Range"):
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{blob.size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        blob.requests += 1
        cut = blob.drop_after if blob.drop_after is not None and blob.requests <= blob.drops else None
        sent = 0
        for block in blob.read(start, end - start):
            if cut is not None and sent + len(block) >= cut:
                self.wfile.write(block[: cut - sent])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(block)
            sent += len(block)


def _byte_range(header: str | None, size: int) -> tuple[int, int]:
    if not header or not header.startswith("bytes="):
        return 0, size
    first, _, last = header[6:].split(",")[0].partition("-")
    if not first:
        return max(size - int(last), 0), size
    return int(first), min(int(last) + 1, size) if last else size


def serve_forever(path: Path, port: int, content_type: str = "video/mp4") -> None:
    """Entry point for a source server in its own process: serves ``path`` at ``/<name>``."""
    server = SourceServer(port)
    server.add(f"/{path.name}", path, content_type)
    server.server.serve_forever()


if __name__ == "__main__":
    serve_forever(Path(sys.argv[1]), int(sys.argv[2]))
