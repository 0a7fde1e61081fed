"""Open shopper sockets per shopper (visitor token) and per client address, capped across the
whole cluster (issue 18, abuse budgets).

Counted in the process alone, N replicas allowed N × the cap. With Redis configured, each
key (a shopper, an address) is a sorted set in Redis whose members are this process's
sockets (``<process>:<sid>``), scored with the time they stop counting. A Lua script drops
the expired members, counts, and adds the new one in one step, so 150 sockets opened at once
on several replicas still cannot all pass. Every process pushes its own members' expiry
forward every ``REFRESH_SECONDS``; a process that dies stops doing so, and its sockets stop
counting ``TTL_SECONDS`` later (they are never counted for ever). When Redis cannot be reached
the process counts on its own, as without Redis: a budget, not a reason to refuse everyone.

Without Redis (one process; SQLite) the count stays in memory: one turn of the event loop
checks and counts.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any, TypeVar

from redis import asyncio as aioredis

from livedesk.kit.batch import Batcher
from livedesk.kit.logging import get_logger

log = get_logger("livedesk.realtime")

REFRESH_SECONDS = 5.0
TTL_SECONDS = 20.0
K = TypeVar("K")

# KEYS: the shopper's set, the address's set. ARGV: member, ttl, cap per shopper, cap per
# address (0: none). Answers 0 (admitted), 1 (shopper over), 2 (address over).
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local cap = tonumber(ARGV[2 + i])
  if cap > 0 and redis.call('ZCARD', key) >= cap then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""
# KEYS: sets; ARGV: ttl, then one member per key. Pushes the members' expiry forward.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""


class SocketCaps:
    """``admit`` a socket against both caps (or say which one it breaks); ``release`` it."""

    def __init__(self, redis_url: str, prefix: str, process: str) -> None:
        self._redis = aioredis.Redis.from_url(redis_url) if redis_url else None
        self._prefix = f"{prefix}:sockets"
        self._process = process
        # This process's admitted sockets: sid → (shopper key, address key), and the local
        # counts (the whole count without Redis, the fallback while it is away).
        self._mine: dict[str, tuple[str, str]] = {}
        self._shoppers: Counter[uuid.UUID] = Counter()
        self._addresses: Counter[str] = Counter()
        self._admit_script: Any = None
        self._releases: Batcher[tuple[tuple[str, str], str]] = Batcher(self._release_shared)
        self._refresh_script: Any = None

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def _keys(self, shopper_id: uuid.UUID, address: str) -> tuple[str, str]:
        return f"{self._prefix}:shopper:{shopper_id}", f"{self._prefix}:address:{address}"

    async def admit(
        self, sid: str, shopper_id: uuid.UUID, address: str, per_shopper: int, per_address: int
    ) -> str:
        """'' when admitted (and counted), else 'shopper' or 'address': the cap it would break."""
        over = ""
        if self._redis is not None:
            try:
                over = await self._admit_shared(sid, shopper_id, address, per_shopper, per_address)
            except Exception as exc:  # Redis away: this process's own count decides meanwhile
                log.warning("socket caps counted locally: Redis unavailable", error=repr(exc))
                over = self._over_locally(shopper_id, address, per_shopper, per_address)
        else:
            over = self._over_locally(shopper_id, address, per_shopper, per_address)
        if not over:
            self._mine[sid] = self._keys(shopper_id, address)
            self._shoppers[shopper_id] += 1
            self._addresses[address] += 1
        return over

    def _over_locally(self, shopper_id: uuid.UUID, address: str, per_shopper: int, per_address: int) -> str:
        if per_shopper and self._shoppers[shopper_id] >= per_shopper:
            return "shopper"
        if per_address and self._addresses[address] >= per_address:
            return "address"
        return ""

    async def _admit_shared(
        self, sid: str, shopper_id: uuid.UUID, address: str, per_shopper: int, per_address: int
    ) -> str:
        assert self._redis is not None
        if self._admit_script is None:
            self._admit_script = self._redis.register_script(_ADMIT)
        keys = list(self._keys(shopper_id, address))
        answer = await self._admit_script(
            keys=keys, args=[self._member(sid), TTL_SECONDS, per_shopper, per_address]
        )
        return {0: "", 1: "shopper", 2: "address"}[int(answer)]

    def _member(self, sid: str) -> str:
        return f"{self._process}:{sid}"

    async def release(self, sid: str, shopper_id: uuid.UUID, address: str) -> None:
        keys = self._mine.pop(sid, None)
        if keys is None:
            return
        _uncount(self._shoppers, shopper_id)
        _uncount(self._addresses, address)
        if self._redis is not None:
            try:
                await self._releases.submit((keys, self._member(sid)))
            except Exception as exc:  # it expires by itself
                log.warning("socket cap not released in Redis", error=repr(exc))

    async def _release_shared(self, members: list[tuple[tuple[str, str], str]]) -> None:
        # One pipeline for every socket closed meanwhile: 2,000 sockets closing together made
        # 2,000 pipelines at once, past the client's connection pool (MaxConnectionsError).
        redis = self._redis
        if redis is None:
            return
        async with redis.pipeline(transaction=False) as pipe:
            for keys, member in members:
                for key in keys:
                    pipe.zrem(key, member)
            await pipe.execute()

    async def refresh(self) -> None:
        """Push this process's members' expiry forward (all of them, a few hundred per call)."""
        if self._redis is None or not self._mine:
            return
        if self._refresh_script is None:
            self._refresh_script = self._redis.register_script(_REFRESH)
        items = [(key, self._member(sid)) for sid, keys in list(self._mine.items()) for key in keys]
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            await self._refresh_script(keys=[k for k, _ in chunk], args=[TTL_SECONDS, *(m for _, m in chunk)])

    async def close(self) -> None:
        # Forgotten first: a refresh still under way (background tasks stop after this) then
        # finds no Redis instead of opening a connection nobody would close.
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()


def _uncount(counter: Counter[K], key: K) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]  # memory follows the open sockets, not every client ever seen
