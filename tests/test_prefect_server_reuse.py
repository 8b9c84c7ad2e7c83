"""A busy background Prefect server is waited for, never doubled: a second server on the same database would
reset its slots and split the clients between two ports."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reelflow.orchestration import prefect_server
from reelflow.settings import Settings


@contextmanager
def slow_health(delay_s: float) -> Iterator[str]:
    """A server whose first ``/api/health`` answers after ``delay_s`` (past one health check's timeout)."""
    answered: list[float] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not answered:
                time.sleep(delay_s)
            answered.append(time.monotonic())
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_live_recorded_server_slow_to_answer_is_reused_not_replaced(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    saved = {name: os.environ.get(name) for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")}
    with slow_health(delay_s=3.0) as url:
        (settings.run_dir / "prefect-server.json").write_text(json.dumps({"pid": os.getpid(), "url": url}))
        try:
            found = prefect_server.running_server(settings)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    assert found is not None and found.url == url, "a busy server must be waited for, not taken for dead"
