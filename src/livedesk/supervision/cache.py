"""A short-lived, per-process cache of the day's figures.

Every supervisor page asks for fresh figures after consultations change; with a wall screen
and a few laptops watching, one change would otherwise cost one figures query per page. The
figures change slowly, so pages asking within ``TTL_SECONDS`` of each other share one
computation (also while it is still running) — unless a page names a change the shared one
may have missed (``fresh_after``: the server's time of the change it heard of); then the
figures are computed again, and that computation is shared in turn."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime

from aiohttp import web

from livedesk.kit.context import DB
from livedesk.supervision import figures
from livedesk.supervision.schemas import Figures

TTL_SECONDS = 2.0
Key = tuple[date | None, uuid.UUID | None]


class FiguresCache:
    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.clock = clock
        # key → (monotonic start, wall-clock start, the computation)
        self._entries: dict[Key, tuple[float, float, asyncio.Task[Figures]]] = {}

    async def get(
        self, key: Key, compute: Callable[[], Awaitable[Figures]], fresh_after: datetime | None = None
    ) -> Figures:
        """The figures for ``key``: computed at most once per ``ttl`` in this process, and
        never from a computation that started before ``fresh_after``."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            made_at, started, task = entry
            failed = task.done() and (task.cancelled() or task.exception() is not None)
            late_enough = fresh_after is None or started > fresh_after.timestamp()
            if now - made_at < self.ttl and not failed and late_enough:
                return await asyncio.shield(task)
        started = self.clock()
        task = asyncio.ensure_future(compute())
        self._entries[key] = (now, started, task)
        # Forget old keys (another day, a team nobody watches any more).
        for stale in [k for k, (at, _s, _t) in self._entries.items() if now - at > 10 * self.ttl]:
            del self._entries[stale]
        return await asyncio.shield(task)


FIGURES_CACHE = web.AppKey("figures_cache", FiguresCache)


async def figures_of(
    app: web.Application,
    *,
    day: date | None = None,
    team_id: uuid.UUID | None = None,
    fresh_after: datetime | None = None,
) -> Figures:
    """One day's figures (default today), shared with the other pages asking at the moment,
    and counting every change up to ``fresh_after``."""

    async def compute() -> Figures:
        async with app[DB].read() as session:
            return await figures.figures_for_day(session, day=day, team_id=team_id)

    return await app[FIGURES_CACHE].get((day, team_id), compute, fresh_after)
