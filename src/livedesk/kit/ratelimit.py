"""Rate limits (moving window, from the ``limits`` library): in memory for one process, in
Redis when several processes share the work."""

from __future__ import annotations

import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from livedesk.kit.errors import TooManyRequests


class RateLimits:
    def __init__(self, redis_url: str = "") -> None:
        storage = storage_from_string(f"async+{redis_url}") if redis_url else MemoryStorage()
        assert isinstance(storage, Storage)
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, rule: str | RateLimitItem, *keys: str, message: str) -> None:
        """Count one attempt; raise ``TooManyRequests`` once the rule's budget is spent."""
        item = parse(rule) if isinstance(rule, str) else rule
        if not await self._limiter.hit(item, *keys):
            stats = await self._limiter.get_window_stats(item, *keys)
            retry = max(1, int(stats.reset_time - time.time()))
            raise TooManyRequests(message, retry_after=retry)

    async def clear(self, rule: str | RateLimitItem, *keys: str) -> None:
        item = parse(rule) if isinstance(rule, str) else rule
        await self._limiter.clear(item, *keys)

    async def reset_all(self) -> None:
        await self.storage.reset()
