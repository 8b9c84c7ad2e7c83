"""An emulator as a process of its own (``python -m tests.emulators.<name>``): its config dataclass's fields as
command-line flags, one ``<TAG> {json}`` line once it listens, and a clean exit on SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import fields
from typing import Any, NoReturn, TypeVar

C = TypeVar("C")
E = TypeVar("E")


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


def parse_config(argv: Sequence[str] | None, description: str, config_type: type[C], *, default_port: int = 0,
                 skip: Iterable[str] = (), extra: Callable[[argparse.ArgumentParser], None] | None = None,
                 ) -> tuple[argparse.Namespace, C]:
    """``--port`` plus one ``--some-knob`` flag per field of ``config_type`` (except ``skip``); returns the parsed
    arguments and the config built from them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=default_port)
    if extra is not None:
        extra(parser)
    knobs = [k for k in fields(config_type) if k.name not in set(skip)]  # type: ignore[arg-type]
    for knob in knobs:
        kind = _flag if isinstance(knob.default, bool) else str if knob.default is None else type(knob.default)
        parser.add_argument(f"--{knob.name.replace('_', '-')}", type=kind, default=knob.default)
    args = parser.parse_args(argv)
    return args, config_type(**{k.name: getattr(args, k.name) for k in knobs})


def serve_until_signalled(emulator: AbstractContextManager[E], tag: str, ready: Callable[[E], dict[str, Any]]
                          ) -> NoReturn:
    """Run ``emulator`` until SIGTERM or SIGINT, after printing ``<tag> {ready(emulator)}``."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with emulator as running:
        print(f"{tag} " + json.dumps(ready(running)), flush=True)
        stop.wait()
    sys.exit(0)
