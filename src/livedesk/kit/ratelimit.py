"""Rate limits (moving window, from the ``limits`` library): in memory for one process, in
Redis when several processes share the work.

One process keeps its windows in ``LocalWindows`` below, a few deque operations on the event
loop. The library's own memory storages cost a thread per check on the chat hot path: the
asyncio one hands every expiry sweep to a worker thread (two hops per message), the sync one
starts a ``threading.Timer`` for its sweeps and waits for it to start.

With Redis, a hot path's rule (chat.send) may be checked ``reconciled=True``: decided in this
process, from its own hits plus the other processes' hits as last read from Redis
(``ReconciledWindows``), instead of two Redis round trips per message. See that class for the
tolerance.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import time
import uuid
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


@dataclass
class _Reconciled:
    own: deque[float]  # this process's hits in the window (wall-clock times)
    unpublished: list[float] | None = None  # own hits not yet in Redis
    others: int = 0  # the other processes' hits in the window, as last read
    oldest: float | None = None  # the oldest hit of any process in the window, as last read
    read_at: float = -1.0  # monotonic time of that read


class ReconciledWindows:
    """Moving windows shared by the processes through Redis, decided locally.

    Each process decides from its own hits (exact) plus the other processes' hits as last read;
    every ``SYNC_SECONDS`` one pipelined round trip publishes its new hits (a sorted set per
    window, a member per hit, scored by time) and reads back the count of every window it
    touched. A window not read within ``STALE_SECONDS`` is read before the decision (one round
    trip, the first message of a party that was idle here).

    Tolerance: cluster-wide a window may admit, beyond its budget, what the same party was
    admitted on *other* processes since this process last read the window: at most
    ``SYNC_SECONDS`` (plus a round trip) of the party's sends elsewhere while it is active here,
    at most ``STALE_SECONDS`` of them otherwise. One process alone never exceeds the budget,
    and a party whose sockets are all on one process (the usual case) is counted exactly.
    """

    SYNC_SECONDS = 0.1
    STALE_SECONDS = 5.0
    SWEEP_EVERY_TICKS = 100
    PREFIX = "livedesk:rl:"

    def __init__(self, client: coredis.Redis[bytes], on_error: Any) -> None:
        self._redis = client
        self._on_error = on_error
        self._state: dict[tuple[int, int, tuple[str, ...]], _Reconciled] = {}
        self._touched: set[tuple[int, int, tuple[str, ...]]] = set()
        self._task: asyncio.Task[None] | None = None
        # Members must be unique across processes: this process's id and a counter.
        self._me = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._serial = itertools.count()

    @staticmethod
    def _key(item: RateLimitItem, keys: tuple[str, ...]) -> tuple[int, int, tuple[str, ...]]:
        return item.amount, item.get_expiry(), keys

    def _redis_key(self, key: tuple[int, int, tuple[str, ...]]) -> str:
        return f"{self.PREFIX}{key[0]}/{key[1]}:{'/'.join(key[2])}"

    def _window(self, key: tuple[int, int, tuple[str, ...]], now: float) -> _Reconciled:
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = _Reconciled(deque())
        horizon = now - key[1]
        while state.own and state.own[0] <= horizon:
            state.own.popleft()
        return state

    async def test(self, item: RateLimitItem, *keys: str) -> bool:
        key = self._key(item, keys)
        state = self._window(key, time.time())
        if time.monotonic() - state.read_at > self.STALE_SECONDS:
            await self._sync([key])
        self._touch(key)
        return len(state.own) + state.others < item.amount

    def hit(self, item: RateLimitItem, *keys: str) -> None:
        key = self._key(item, keys)
        now = time.time()
        state = self._window(key, now)
        state.own.append(now)
        if state.unpublished is None:
            state.unpublished = []
        state.unpublished.append(now)
        self._touch(key)

    def reset_time(self, item: RateLimitItem, *keys: str) -> float:
        """When the oldest hit in the window leaves it (wall clock), as far as known here."""
        key = self._key(item, keys)
        now = time.time()
        state = self._window(key, now)
        candidates = [t for t in (state.oldest, state.own[0] if state.own else None) if t is not None]
        return min(candidates, default=now) + key[1]

    async def clear(self, item: RateLimitItem, *keys: str) -> None:
        key = self._key(item, keys)
        self._state.pop(key, None)
        self._touched.discard(key)
        await self._redis.delete([self._redis_key(key)])

    def _touch(self, key: tuple[int, int, tuple[str, ...]]) -> None:
        self._touched.add(key)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ratelimit-sync")

    async def _run(self) -> None:
        ticks = 0
        while self._touched:
            await asyncio.sleep(self.SYNC_SECONDS)
            keys, self._touched = list(self._touched), set()
            await self._sync(keys)
            ticks += 1
            if ticks % self.SWEEP_EVERY_TICKS == 0:
                self._sweep()
        self._sweep()

    async def _sync(self, keys: list[tuple[int, int, tuple[str, ...]]]) -> None:
        """Publish the new hits of ``keys`` and read their windows back: one round trip."""
        now = time.time()
        pipe = await self._redis.pipeline(transaction=False)
        sent: list[tuple[tuple[int, int, tuple[str, ...]], _Reconciled, list[float]]] = []
        for key in keys:
            state = self._window(key, now)
            fresh, state.unpublished = state.unpublished or [], None
            name = self._redis_key(key)
            if fresh:
                pipe.zadd(name, {f"{self._me}-{next(self._serial)}": t for t in fresh})
            pipe.zremrangebyscore(name, float("-inf"), now - key[1])
            pipe.zcard(name)
            pipe.zrange(name, 0, 0, withscores=True)
            pipe.pexpire(name, key[1] * 1000)
            sent.append((key, state, fresh))
        try:
            results = list(await pipe.execute())
        except _STORAGE_ERRORS as exc:
            for _, state, fresh in sent:
                # Published next time; meanwhile each process counts what it knows.
                state.unpublished = fresh + (state.unpublished or [])
                # Not read again before STALE_SECONDS: no round trip per message while Redis is down.
                state.read_at = time.monotonic()
            self._on_error(exc)
            return
        read_at = time.monotonic()
        for _key, state, fresh in sent:
            if fresh:
                results.pop(0)
            _trimmed, total, oldest, _ = results[:4]
            del results[:4]
            # The hits still unpublished are this process's only; the rest of the total is the
            # others' (its own published ones are in state.own).
            published_own = len(state.own) - len(state.unpublished or [])
            state.others = max(0, int(total) - published_own)
            state.oldest = float(oldest[0].score) if oldest else None
            state.read_at = read_at

    def _sweep(self) -> None:
        # Windows with no hit of this process left and a stale read are dropped (they would be
        # read again before the next decision anyway), so memory follows the active parties.
        now, stale = time.time(), time.monotonic() - self.STALE_SECONDS
        for key in [k for k, s in self._state.items() if s.read_at < stale and not self._window(k, now).own]:
            if not self._state[key].unpublished:
                del self._state[key]

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class RateLimits:
    def __init__(self, redis_url: str = "") -> None:
        self._shared: AsyncMovingWindow | None = None
        self._local: LocalWindows | None = None
        self._pool: coredis.ConnectionPool | None = None
        self._reconciled: ReconciledWindows | None = None
        if redis_url:
            # Our own pool, so the app can close its sockets at shutdown (the library's
            # storage has no close of its own).
            self._pool = coredis.ConnectionPool.from_url(redis_url)
            # The library types its options as scalars; a pool is what it passes on to coredis.
            options: dict[str, Any] = {"connection_pool": self._pool}
            storage = storage_from_string(f"async+{redis_url}", **options)
            assert isinstance(storage, AsyncStorage)
            self._shared = AsyncMovingWindow(storage)
            self._reconciled = ReconciledWindows(
                coredis.Redis(connection_pool=self._pool), self._storage_failed
            )
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

    async def allows(self, rule: str | RateLimitItem, *keys: str, reconciled: bool = False) -> bool:
        """Whether one more attempt fits, without counting it (see ``count``). ``reconciled``:
        decided in this process, within ``ReconciledWindows``' tolerance (a hot path's rule;
        pass it to ``count`` and ``refusal`` too)."""
        if reconciled and self._reconciled is not None:
            return await self._reconciled.test(_item(rule), *keys)
        if self._local is not None:
            return self._local.test(_item(rule), *keys)
        assert self._shared is not None
        try:
            return await self._shared.test(_item(rule), *keys)
        except _STORAGE_ERRORS as exc:
            return self._storage_failed(exc).test(_item(rule), *keys)

    async def count(self, rule: str | RateLimitItem, *keys: str, reconciled: bool = False) -> None:
        """Count an attempt that was checked with ``allows`` and went ahead."""
        if reconciled and self._reconciled is not None:
            self._reconciled.hit(_item(rule), *keys)
            return
        await self._hit(_item(rule), keys)

    async def refusal(
        self, rule: str | RateLimitItem, *keys: str, message: str, reconciled: bool = False
    ) -> TooManyRequests:
        """The error for a spent budget, telling the client when to try again."""
        item = _item(rule)
        if reconciled and self._reconciled is not None:
            reset_time = self._reconciled.reset_time(item, *keys)
        elif self._local is not None:
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
        if self._reconciled is not None:
            self._reconciled.close()
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
                if self._reconciled is not None:
                    await self._reconciled.clear(_item(rule), *keys)
            except _STORAGE_ERRORS as exc:
                self._storage_failed(exc)
