"""Rate limits (moving window, from the ``limits`` library): in memory for one process, in
Redis when several processes share the work.

One process keeps its windows in ``LocalWindows`` below, a few deque operations on the event
loop. The library's own memory storages cost a thread per check on the chat hot path: the
asyncio one hands every expiry sweep to a worker thread (two hops per message), the sync one
starts a ``threading.Timer`` for its sweeps and waits for it to start.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import coredis
from coredis.exceptions import RedisError
from limits import RateLimitItem, parse, parse_many
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
from limits.errors import StorageError
from limits.storage import storage_from_string

from livedesk.kit.errors import TooManyRequests
from livedesk.kit.logging import get_logger

log = get_logger("livedesk.ratelimit")

# What the shared storage raises when Redis is down or slow (coredis is limits' async client).
_STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, TimeoutError, StorageError, RedisError)


@functools.lru_cache(maxsize=64)
def _parse(rule: str) -> RateLimitItem:
    return parse(rule)


@functools.lru_cache(maxsize=64)
def _windows(rules: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(rules))


def _item(rule: str | RateLimitItem) -> RateLimitItem:
    # Rules come from settings: a handful of strings parsed once, not on every chat send.
    return _parse(rule) if isinstance(rule, str) else rule


@dataclass(frozen=True)
class WindowStats:
    reset_time: float
    remaining: int


class LocalWindows:
    """Moving windows in this process: per key, the times of the hits still inside the window."""

    # Every this many hits, keys whose window has emptied are dropped, so memory follows the
    # active parties rather than every party ever seen.
    SWEEP_EVERY = 1000

    def __init__(self) -> None:
        # key → (window length in seconds, hit times inside it)
        self._hits: dict[tuple[int, int, tuple[str, ...]], tuple[int, deque[float]]] = {}
        self._until_sweep = self.SWEEP_EVERY

    @staticmethod
    def _key(item: RateLimitItem, keys: tuple[str, ...]) -> tuple[int, int, tuple[str, ...]]:
        # The rule's size and length and the caller's keys (the library's key_for builds a
        # string on every call, and this runs on every chat send).
        return item.amount, item.get_expiry(), keys

    def _window(self, item: RateLimitItem, keys: tuple[str, ...], now: float) -> deque[float]:
        expiry = item.get_expiry()
        key = self._key(item, keys)
        found = self._hits.get(key)
        if found is None:
            found = self._hits[key] = (expiry, deque())
        hits = found[1]
        horizon = now - expiry
        while hits and hits[0] <= horizon:
            hits.popleft()
        return hits

    def test(self, item: RateLimitItem, *keys: str) -> bool:
        return len(self._window(item, keys, time.monotonic())) < item.amount

    def hit(self, item: RateLimitItem, *keys: str) -> bool:
        now = time.monotonic()
        hits = self._window(item, keys, now)
        if len(hits) >= item.amount:
            return False
        hits.append(now)
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep(now)
        return True

    def get_window_stats(self, item: RateLimitItem, *keys: str) -> WindowStats:
        now = time.monotonic()
        hits = self._window(item, keys, now)
        # reset_time is wall-clock, as the library reports it.
        first = hits[0] if hits else now
        return WindowStats(time.time() + (first + item.get_expiry() - now), max(0, item.amount - len(hits)))

    def clear(self, item: RateLimitItem, *keys: str) -> None:
        self._hits.pop(self._key(item, keys), None)

    def _sweep(self, now: float) -> None:
        self._until_sweep = self.SWEEP_EVERY
        stale = [key for key, (expiry, hits) in self._hits.items() if not hits or hits[-1] <= now - expiry]
        for key in stale:
            del self._hits[key]


class RateLimits:
    def __init__(self, redis_url: str = "") -> None:
        self._shared: AsyncMovingWindow | None = None
        self._local: LocalWindows | None = None
        self._pool: coredis.ConnectionPool | None = None
        if redis_url:
            # Our own pool, so the app can close its sockets at shutdown (the library's
            # storage has no close of its own).
            self._pool = coredis.ConnectionPool.from_url(redis_url)
            # The library types its options as scalars; a pool is what it passes on to coredis.
            options: dict[str, Any] = {"connection_pool": self._pool}
            storage = storage_from_string(f"async+{redis_url}", **options)
            assert isinstance(storage, AsyncStorage)
            self._shared = AsyncMovingWindow(storage)
        else:
            self._local = LocalWindows()
        # While Redis cannot be reached, each process counts on its own: the limits still hold
        # (per process), and chat, sign-in and queue joins keep working instead of failing.
        self._fallback = LocalWindows()
        self._degraded = False

    def _storage_failed(self, exc: Exception) -> LocalWindows:
        if not self._degraded:
            log.warning("rate limit storage unreachable; counting per process", error=str(exc))
        self._degraded = True
        return self._fallback

    def _storage_back(self) -> None:
        if self._degraded:
            log.info("rate limit storage reachable again")
        self._degraded = False

    async def _hit(self, item: RateLimitItem, keys: tuple[str, ...]) -> bool:
        if self._local is not None:
            return self._local.hit(item, *keys)
        assert self._shared is not None
        try:
            allowed = await self._shared.hit(item, *keys)
        except _STORAGE_ERRORS as exc:
            return self._storage_failed(exc).hit(item, *keys)
        self._storage_back()
        return allowed

    async def hit(self, rule: str | RateLimitItem, *keys: str, message: str) -> None:
        """Count one attempt; raise ``TooManyRequests`` once the rule's budget is spent."""
        if not await self._hit(_item(rule), keys):
            raise await self.refusal(rule, *keys, message=message)

    async def hit_all(self, rules: str, *keys: str, message: str) -> None:
        """Count one attempt against every window of ``rules`` ("20/minute;100/hour"), all or
        none: a refused attempt counts in none, and the refusal names the longest wait among
        the full windows. (Across processes two attempts may both pass between the test and
        the count: a one-off overshoot.)"""
        windows = _windows(rules)
        full = [window for window in windows if not await self.allows(window, *keys)]
        if full:
            refusals = [await self.refusal(window, *keys, message=message) for window in full]
            raise max(refusals, key=lambda refusal: refusal.retry_after)
        for window in windows:
            await self.count(window, *keys)

    async def allows(self, rule: str | RateLimitItem, *keys: str) -> bool:
        """Whether one more attempt fits, without counting it (see ``count``)."""
        if self._local is not None:
            return self._local.test(_item(rule), *keys)
        assert self._shared is not None
        try:
            return await self._shared.test(_item(rule), *keys)
        except _STORAGE_ERRORS as exc:
            return self._storage_failed(exc).test(_item(rule), *keys)

    async def count(self, rule: str | RateLimitItem, *keys: str) -> None:
        """Count an attempt that was checked with ``allows`` and went ahead."""
        await self._hit(_item(rule), keys)

    async def refusal(self, rule: str | RateLimitItem, *keys: str, message: str) -> TooManyRequests:
        """The error for a spent budget, telling the client when to try again."""
        item = _item(rule)
        if self._local is not None:
            reset_time = self._local.get_window_stats(item, *keys).reset_time
        else:
            assert self._shared is not None
            try:
                reset_time = (await self._shared.get_window_stats(item, *keys)).reset_time
            except _STORAGE_ERRORS as exc:
                reset_time = self._storage_failed(exc).get_window_stats(item, *keys).reset_time
        return TooManyRequests(message, retry_after=max(1, int(reset_time - time.time())))

    def close(self) -> None:
        """Close the Redis connections (shutdown)."""
        if self._pool is not None:
            self._pool.disconnect()

    async def clear(self, rule: str | RateLimitItem, *keys: str) -> None:
        if self._local is not None:
            self._local.clear(_item(rule), *keys)
        else:
            assert self._shared is not None
            self._fallback.clear(_item(rule), *keys)
            try:
                await self._shared.clear(_item(rule), *keys)
            except _STORAGE_ERRORS as exc:
                self._storage_failed(exc)
