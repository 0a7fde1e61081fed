"""The shopper connection rows (one per open shopper socket, ``models.ShopperConnection``),
written in group commits: after a restart thousands of sockets come back within seconds, and a
transaction each (with the pool's 30 connections shared by everything else) was what queued
the connects behind one another (issue 22, reconnect storms).

A connect still returns only once its row is committed, and a socket's delete never
overtakes its insert (``kit.batch.Batcher`` keeps their order), so the queue's "has this
shopper a page open" (``service.abandon_if_gone``) reads the same rows as before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import delete, insert

from livedesk.kit.batch import Batcher
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB
from livedesk.models import ShopperConnection


@dataclass(frozen=True)
class _Change:
    sid: str
    shopper_id: uuid.UUID | None  # None: the socket closed
    process_id: str = ""


class ShopperConnections:
    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._batcher: Batcher[_Change] = Batcher(self._flush)

    async def opened(self, sid: str, shopper_id: uuid.UUID, process_id: str) -> None:
        await self._batcher.submit(_Change(sid, shopper_id, process_id))

    async def closed(self, sid: str) -> None:
        await self._batcher.submit(_Change(sid, None))

    async def _flush(self, changes: list[_Change]) -> None:
        now = utcnow()
        closed = {c.sid for c in changes if c.shopper_id is None}
        # A socket that opened and closed within one batch leaves no row: nothing to write.
        rows = [
            {"sid": c.sid, "shopper_id": c.shopper_id, "process_id": c.process_id, "connected_at": now}
            for c in changes
            if c.shopper_id is not None and c.sid not in closed
        ]
        gone = closed - {c.sid for c in changes if c.shopper_id is not None}
        async with self._app[DB].transaction() as session:
            if rows:
                await session.execute(insert(ShopperConnection), rows)
            if gone:
                await session.execute(delete(ShopperConnection).where(ShopperConnection.sid.in_(gone)))


SHOPPER_CONNECTIONS = web.AppKey("shopper_connections", ShopperConnections)
