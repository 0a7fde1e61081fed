"""Background tasks the app owns, cancelled at shutdown before the database closes — so no
task reaches for a disposed engine (and leaks a connection) after the app has stopped.

Shutdown waits for the cancelled tasks at most ``CLOSE_SECONDS``: a task that swallows its
cancellation (or waits on something that does) must not keep a SIGTERM'd process alive."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from livedesk.kit.logging import get_logger

log = get_logger("livedesk.background")

CLOSE_SECONDS = 5.0


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        if self.closing:
            coro.close()
            return
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", task=task.get_name(), error=repr(task.exception()))

    def pending(self, name: str) -> int:
        """How many tasks of this name are still running (for tests and diagnostics)."""
        return sum(1 for task in self._tasks if task.get_name() == name and not task.done())

    async def close(self, within: float = CLOSE_SECONDS) -> None:
        self.closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=within)
        if late:
            log.error("background tasks ignored shutdown", tasks=sorted(task.get_name() for task in late))


BACKGROUND = web.AppKey("background", Background)
