"""Runs routing passes: when something changes (a shopper joins, an advisor becomes free)
and on a short tick, which is also what moves unanswered offers on. Passes are coalesced:
a kick during a pass makes one more pass, not one per kick.

Every process runs one; the passes themselves are serialised in the database, so two
processes never offer the same consultation twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from livedesk.consultations import attendance, queue
from livedesk.consultations.schemas import QueuePosition
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.db import Outgoing
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic
from livedesk.realtime import rooms

log = get_logger("livedesk.routing")


class RoutingRunner:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._sent: dict[str, tuple[int, int]] = {}
        settings = app[SETTINGS]
        self.tick = min(1.0, settings.offer_timeout_seconds / 4)
        # Kicks and ticks share one coalesced pass; the tick's own job first ends abandoned
        # consultations (``attend``), then asks for a pass.
        self._passes = Periodic("livedesk-routing-pass", self._pass, every=self.tick)
        self._job = Periodic("livedesk-routing", self._on_tick, every=self.tick)

    async def kick(self) -> None:
        await self._passes.kick()

    async def _pass(self) -> None:
        app = self.app
        try:
            # Most ticks find no one waiting: say so from a read, without the write lock a
            # pass takes (on SQLite, the lock every chat send needs too).
            async with app[DB].read() as session:
                waiting = await queue.anything_waiting(session)
            if not waiting:
                await self._send_positions([])
                return
            async with app[DB].transaction() as session:
                await queue.route(session, app[SETTINGS])
                places = await queue.positions(session, app[SETTINGS])
        except Exception:  # a failed pass is retried on the next tick
            log.exception("routing pass failed")
            return
        await self._send_positions(places)

    async def _send_positions(self, places: list[tuple[uuid.UUID, QueuePosition]]) -> None:
        """Only changes are sent: a shopper hears when their place or estimate moves."""
        # The positions are read, not written: nothing to commit, straight to the sink.
        sink = self.app[DB].sink()
        current: dict[str, tuple[int, int]] = {}
        for shopper_id, place in places:
            key = str(place.consultation_id)
            value = (place.position, place.estimated_wait_seconds)
            current[key] = value
            if self._sent.get(key) != value:
                room = rooms.shopper_of(shopper_id, place.consultation_id)
                await sink(
                    Outgoing(queue.QUEUE_POSITION, place.model_dump(mode="json"), room, rooms.SHOPPER_NS)
                )
        self._sent = current

    async def attend(self) -> None:
        """End consultations nobody is in any more and give up places nobody holds (see
        consultations/attendance.py); on the tick, so no deploy can cancel it."""
        app = self.app
        try:
            async with app[DB].read() as session:
                suspects = await attendance.suspects(session)
            for consultation_id in suspects:
                async with app[DB].transaction() as session:
                    await attendance.judge(session, app[SETTINGS], consultation_id)
        except Exception:  # retried on the next tick
            log.exception("attendance check failed")

    async def _on_tick(self) -> None:
        await self.attend()
        await self.kick()

    async def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()


RUNNER = web.AppKey("routing_runner", RoutingRunner)


async def kick(app: web.Application) -> None:
    if RUNNER in app:
        await app[RUNNER].kick()


async def runner_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = RoutingRunner(app)
    app[RUNNER] = runner
    await runner.start()
    yield
    await runner.stop()
