"""The per-process figures cache: pages asking at once share one computation; a page that
heard of a later change gets figures computed after it; a failed computation is not kept."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from livedesk.supervision.cache import FiguresCache
from livedesk.supervision.figures import compute
from livedesk.supervision.schemas import Figures

KEY = (None, None)


class Counting:
    """A figures computation that counts its runs and can be held until released."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> Figures:
        self.runs += 1
        await self.release.wait()
        return compute([], day=date(2026, 3, 10), timezone="UTC", now=datetime.now(UTC))


async def test_pages_asking_at_once_share_one_computation() -> None:
    cache = FiguresCache(ttl=60)
    work = Counting()
    work.release.clear()
    waiting = [asyncio.create_task(cache.get(KEY, work)) for _ in range(20)]
    await asyncio.sleep(0)  # let every page ask before the first answer exists
    work.release.set()
    answers = await asyncio.gather(*waiting)
    assert work.runs == 1
    assert all(a == answers[0] for a in answers)
    # Another team is another computation.
    await cache.get((None, uuid.uuid4()), work)
    assert work.runs == 2


async def test_a_later_change_gets_figures_computed_after_it() -> None:
    now = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
    cache = FiguresCache(ttl=60, clock=lambda: now.timestamp())
    work = Counting()
    await cache.get(KEY, work)
    # A change from before the shared computation started: shared.
    await cache.get(KEY, work, fresh_after=now - timedelta(seconds=1))
    assert work.runs == 1
    # A change at or after it started: computed again, and that one is shared in turn.
    changed = now
    now += timedelta(milliseconds=5)
    await cache.get(KEY, work, fresh_after=changed)
    assert work.runs == 2
    await cache.get(KEY, work, fresh_after=changed)
    assert work.runs == 2


async def test_old_figures_expire() -> None:
    cache = FiguresCache(ttl=0)
    work = Counting()
    await cache.get(KEY, work)
    await cache.get(KEY, work)
    assert work.runs == 2


async def test_a_failure_is_not_kept() -> None:
    cache = FiguresCache(ttl=60)
    calls = 0

    async def flaky() -> Figures:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database blip")
        return await Counting()()

    with pytest.raises(RuntimeError):
        await cache.get(KEY, flaky)
    await cache.get(KEY, flaky)
    assert calls == 2
