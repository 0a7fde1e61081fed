"""The place in the queue each waiting shopper was last told, kept where every process sees it
(a Redis hash with several processes; a dict in one), so that only places that moved are sent
and a page that comes back reads its place without a recompute of the whole queue.

A value is "position:seconds:advisors"; a place has *moved* when its position or estimate did
(the advisors count alone is stored, not sent: what shoppers were sent before too).
"""

from __future__ import annotations

import uuid
from typing import Protocol

from redis import asyncio as aioredis

from livedesk.consultations.schemas import QueuePosition


def told(place: QueuePosition) -> str:
    return f"{place.position}:{place.estimated_wait_seconds}:{place.advisors_online}"


def place_from(consultation_id: uuid.UUID, value: str) -> QueuePosition | None:
    try:
        position, seconds, advisors = (int(part) for part in value.split(":"))
    except ValueError:
        return None
    return QueuePosition(
        consultation_id=consultation_id,
        position=position,
        estimated_wait_seconds=seconds,
        advisors_online=advisors,
    )


def _shown(value: str | None) -> str | None:
    return value.rsplit(":", 1)[0] if value is not None else None


class PlaceBook(Protocol):
    async def changed(self, places: dict[str, str]) -> set[str]:
        """Store ``places`` (consultation id → ``told(place)``) as the last told; forget any
        not in it. Returns the ids whose position or estimate differs from what was stored."""
        ...

    async def get(self, consultation_id: str) -> str | None: ...


class LocalBook:
    """One process (SQLite, tests)."""

    def __init__(self) -> None:
        self._told: dict[str, str] = {}

    async def changed(self, places: dict[str, str]) -> set[str]:
        moved = {k for k, v in places.items() if _shown(self._told.get(k)) != _shown(v)}
        self._told = dict(places)
        return moved

    async def get(self, consultation_id: str) -> str | None:
        return self._told.get(consultation_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBook:
    """Every process sharing one Redis: a hash of the places last told."""

    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self._redis = redis
        self._key = key

    async def changed(self, places: dict[str, str]) -> set[str]:
        raw = await self._redis.hgetall(self._key)
        stored = {_text(k): _text(v) for k, v in raw.items()}
        moved = {k for k, v in places.items() if _shown(stored.get(k)) != _shown(v)}
        updated = {k: v for k, v in places.items() if stored.get(k) != v}
        gone = [k for k in stored if k not in places]
        async with self._redis.pipeline(transaction=True) as pipe:
            if updated:
                # A fresh dict, so that mypy types it as hset wants.
                pipe.hset(self._key, mapping={k: v for k, v in updated.items()})
            if gone:
                pipe.hdel(self._key, *gone)
            await pipe.execute()
        return moved

    async def get(self, consultation_id: str) -> str | None:
        value = await self._redis.hget(self._key, consultation_id)
        return _text(value) if value is not None else None
