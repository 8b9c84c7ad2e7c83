"""In-process listeners (the CLI's progress displays): subscribe, unsubscribe, notify, safe across threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Listeners(Generic[P]):
    """Callables that get every notification made in this process, in the order they subscribed."""

    def __init__(self) -> None:
        self._listeners: list[Callable[P, None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[P, None]) -> Callable[[], None]:
        """Add ``listener``; returns the function that removes it again."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(*args, **kwargs)
