"""Waiting for one prompt: websocket events and /history + /queue polling, whichever answers first."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from reelflow.errors import ComfyDeadlineError, ComfyJobLostError, ComfyUnreachableError, TransientProviderError
from reelflow.providers.comfyui.client import ComfyClient
from reelflow.providers.comfyui.events import ProgressEvent, check_history, read_message
from reelflow.providers.comfyui.feed import follow
from reelflow.providers.comfyui.outputs import IMAGE_TYPES, OutputFile, expected_output

log = logging.getLogger(__name__)

OnProgress = Callable[[ProgressEvent], Awaitable[None] | None]


def recovered_entry(output: OutputFile) -> dict[str, Any]:
    """A stand-in history entry for an output found on disk after the server forgot the prompt."""
    item = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
    key = "images" if output.extension in IMAGE_TYPES else "videos"
    return {"outputs": {"recovered": {key: [item]}}, "recovered": True,
            "status": {"status_str": "success", "completed": True, "messages": []}}


class Waiter:
    """One wait on one prompt; also the way to resume one after a crash.

    ``async with Waiter(client, prompt_id, client_id) as w`` opens the websocket (reconnecting under
    ``client_id``); submit inside the block, then ``await w.run(deadline_s, interrupt_on_deadline=True)``.
    ``/history`` + ``/queue`` are polled every ``poll_interval_s`` and after each reconnect. ``run`` returns the
    history entry of a success or raises ``ComfyExecutionError``, ``ComfyJobCancelledError``,
    ``ComfyJobLostError`` (gone from history and queue, no ``output_extension`` file under ``filename_prefix``) or
    ``ComfyDeadlineError``. An entry recovered from ``/view`` after a lost history has ``"recovered"``.
    """

    def __init__(self, client: ComfyClient, prompt_id: str, client_id: str, *, on_progress: OnProgress | None = None,
                 poll_interval_s: float = 15.0, filename_prefix: str | None = None, unreachable_grace_s: float = 300.0,
                 finish_grace_s: float = 15.0, ws_ready_s: float = 5.0, output_extension: str = ".mp4") -> None:
        self.client = client
        self.output_extension = output_extension
        self.prompt_id = prompt_id
        self.client_id = client_id
        self.on_progress = on_progress
        self.poll_interval_s = poll_interval_s
        self.filename_prefix = filename_prefix
        self.unreachable_grace_s = unreachable_grace_s
        self.finish_grace_s = finish_grace_s
        self.ws_ready_s = ws_ready_s
        self._poke = asyncio.Event()
        self._finished_hint = False
        self._connects = 0
        self._last_event: ProgressEvent | None = None
        self._unreachable_since: float | None = None
        self._outcome: asyncio.Future[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Waiter:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect the websocket; call before POST /prompt so no early event is missed.

        Returns once the socket connected or its first attempt failed (at most ``ws_ready_s``).
        """
        if self._outcome is not None:
            return
        self._outcome = asyncio.get_running_loop().create_future()
        attempted = asyncio.Event()
        listener = follow(self.client.ws_url(self.client_id), self.client.auth_headers,
                          on_message=self._on_message, on_connect=self._on_connect, attempted=attempted)
        self._start(listener)
        with suppress(TimeoutError):
            await asyncio.wait_for(attempted.wait(), self.ws_ready_s)

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    async def run(self, deadline_s: float, *, interrupt_on_deadline: bool) -> dict[str, Any]:
        """Wait for the prompt (opening the socket first if needed); the history entry of a success."""
        await self.open()
        assert self._outcome is not None
        self._start(self._poll_loop())
        try:
            async with asyncio.timeout(deadline_s):
                entry = await self._outcome
        except TimeoutError:
            if interrupt_on_deadline:
                with suppress(TransientProviderError):
                    await self.client.cancel(self.prompt_id)
            raise ComfyDeadlineError(self.prompt_id, deadline_s) from None
        finally:
            await self.close()
        check_history(entry, self.prompt_id)
        return entry

    def _settle(self, entry: dict[str, Any] | None = None, error: BaseException | None = None) -> None:
        if self._outcome is None or self._outcome.done():
            return
        if error is not None:
            self._outcome.set_exception(error)
        else:
            self._outcome.set_result(entry or {})

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._settle(error=task.exception())

    async def _emit(self, event: ProgressEvent) -> None:
        if self.on_progress is None or event == self._last_event:
            return
        self._last_event = event
        try:
            result = self.on_progress(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("progress callback failed for prompt %s", self.prompt_id)

    async def _on_message(self, message: dict[str, Any]) -> None:
        signal = read_message(message, self.prompt_id)
        if signal is None:
            return
        for event in signal.events:
            await self._emit(event)
        if signal.error is not None:
            self._settle(error=signal.error)
        if signal.finished:
            self._finished_hint = True
            self._poke.set()

    async def _on_connect(self) -> None:
        self._connects += 1
        if self._connects > 1:
            self._poke.set()

    async def _poll_loop(self) -> None:
        while True:
            self._poke.clear()
            entry = await self._reconcile_tolerantly()
            if entry is not None:
                self._settle(entry)
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.poll_interval_s)

    async def _reconcile_tolerantly(self) -> dict[str, Any] | None:
        try:
            return await self._reconcile()
        except TransientProviderError as exc:
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since > self.unreachable_grace_s:
                raise ComfyUnreachableError(self.client.base_url, f"no answer for {self.unreachable_grace_s:g} s "
                                       f"while waiting for prompt {self.prompt_id}: {exc}") from exc
            log.warning("polling ComfyUI for prompt %s failed, will retry: %s", self.prompt_id, exc)
            return None

    async def _reconcile(self) -> dict[str, Any] | None:
        client, prompt_id = self.client, self.prompt_id
        entry = await client.history(prompt_id)
        self._unreachable_since = None
        if entry is None and self._finished_hint:
            entry = await self._await_history()
        if entry is not None:
            return entry
        queue = await client.queue_state()
        if prompt_id in queue.pending:
            position = queue.pending.index(prompt_id) + 1
            await self._emit(ProgressEvent(prompt_id, "queued", queue_position=position))
        if prompt_id in queue:
            return None
        entry = await client.history(prompt_id)
        if entry is not None:
            return entry
        if self.filename_prefix:
            output = expected_output(self.filename_prefix, self.output_extension)
            if await client.exists(output):
                return recovered_entry(output)
        raise ComfyJobLostError(client.base_url, prompt_id)

    async def _await_history(self) -> dict[str, Any] | None:
        """After the done signal, history is written a moment later: read it again, briefly."""
        delay, waited = 0.05, 0.0
        while waited < self.finish_grace_s:
            await asyncio.sleep(delay)
            waited += delay
            entry = await self.client.history(self.prompt_id)
            if entry is not None:
                return entry
            delay = min(delay * 2, 1.0)
        return None
