"""Runs routing on the changes that make a decision possible (consultations/dispatch.py),
not on a clock: a shopper joins (that consultation), an advisor becomes free (her), an offer
is declined (it, and her) or reaches its deadline (a timer set when it was made). Kicks are
coalesced: what arrives during a drain is decided in one more.

Queue places (queue.positions) are recomputed once after a batch of changes, in the
background so that no join waits for them, and only places that moved are sent: the last
place each shopper was told is kept where every process sees it (Redis when configured),
and on PostgreSQL the recompute is serialised, so two processes never tell one shopper the
same thing twice, nor an older thing last.

A slow sweep (``routing_sweep_seconds``), run by one process at a time (kit/periodic's
claim), catches what a lost change missed: offers past their deadline whose timer died with
its process, waits past ``queue_max_wait_seconds``, a decision skipped in a race, and
estimates that drift as calls go on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable

from aiohttp import web
from redis import asyncio as aioredis
from sqlalchemy import text

from livedesk.consultations import attendance, dispatch, queue
from livedesk.consultations.place_book import LocalBook, PlaceBook, RedisBook, place_from, told
from livedesk.consultations.schemas import QueuePosition
from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.db import Outgoing
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Claim, LocalClaim, Periodic, RedisClaim, log_job_failure
from livedesk.realtime import rooms

log = get_logger("livedesk.routing")

# Serialises queue-place recomputes across processes (PostgreSQL, transaction-scoped).
PLACES_LOCK = 727003
# Pages opening and closing move places; they are recomputed this long after the first.
PLACES_SETTLE = 1.0
# A timer fires a little after the deadline, so the database clock agrees it has passed.
DEADLINE_MARGIN = 0.05


class RoutingRunner:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        settings = app[SETTINGS]
        self._redis = aioredis.Redis.from_url(settings.redis_url) if settings.redis_url else None
        claim: Claim = LocalClaim()
        self._book: PlaceBook = LocalBook()
        if self._redis is not None:
            claim = RedisClaim(self._redis, prefix=f"{settings.redis_channel}:periodic:")
            self._book = RedisBook(self._redis, f"{settings.redis_channel}:queue-places")
        self._consultations: set[uuid.UUID] = set()
        self._advisors: set[uuid.UUID] = set()
        self._general = False
        self._timers: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self._places_timer: asyncio.TimerHandle | None = None
        # Kicks only (never on a clock): coalesced decisions, then queue places.
        self._decide = Periodic("livedesk-routing", self._drain, every=3600.0)
        self._places = Periodic("livedesk-queue-places", self._send_places, every=3600.0)
        self._sweep = Periodic(
            "livedesk-routing-sweep", self.sweep, every=lambda: settings.routing_sweep_seconds, claim=claim
        )
        # Attendance (consultations/attendance.py) keeps its short tick.
        self.tick = min(1.0, settings.offer_timeout_seconds / 4)
        self._attend = Periodic("livedesk-attendance", self.attend, every=self.tick)
        # For tests and the benchmark.
        self.decisions = 0
        self._places_pending = 0
        self.places_sent = 0

    # --- decisions ------------------------------------------------------------------------

    async def kick(
        self,
        *,
        consultation: uuid.UUID | None = None,
        advisors: Iterable[uuid.UUID | None] = (),
        general: bool = False,
    ) -> None:
        """Decide what this change allows (in the caller's task unless a drain is under way,
        which then takes it on), then recompute queue places in the background."""
        if consultation is not None:
            self._consultations.add(consultation)
        self._advisors.update(a for a in advisors if a is not None)
        self._general = self._general or general
        await self._decide.kick()

    async def _drain(self) -> None:
        while self._consultations or self._advisors or self._general:
            consultations, self._consultations = self._consultations, set()
            advisors, self._advisors = self._advisors, set()
            general, self._general = self._general, False
            for consultation_id in consultations:
                await self._decide_once(consultation_id=consultation_id)
            for advisor_id in advisors:
                await self._decide_once(advisor_id=advisor_id)
            if general:
                await self._decide_once()
        self.places_soon()

    async def _decide_once(
        self, *, consultation_id: uuid.UUID | None = None, advisor_id: uuid.UUID | None = None
    ) -> None:
        app = self.app
        try:
            async with app[DB].transaction() as session:
                made = await dispatch.decide(
                    session, app[SETTINGS], consultation_id=consultation_id, advisor_id=advisor_id
                )
        except Exception:  # the next change or the sweep decides again
            log.exception("routing decision failed")
            return
        self.decisions += len(made)
        for offer in made:
            self._set_timer(offer)

    def _set_timer(self, offer: dispatch.Offer) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.app[SETTINGS].offer_timeout_seconds) + DEADLINE_MARGIN
        old = self._timers.pop(offer.consultation_id, None)
        if old is not None:
            old.cancel()
        self._timers[offer.consultation_id] = loop.call_later(delay, self._deadline, offer.consultation_id)

    def _deadline(self, consultation_id: uuid.UUID) -> None:
        self._timers.pop(consultation_id, None)
        self.app[BACKGROUND].spawn(self._expire(consultation_id), name="routing-offer-deadline")

    async def _expire(self, consultation_id: uuid.UUID) -> None:
        app = self.app
        try:
            async with app[DB].transaction() as session:
                missed = await dispatch.expire_offer(session, app[SETTINGS], consultation_id)
        except Exception:  # the sweep finds it on its deadline index
            log.exception("offer expiry failed")
            return
        if missed is not None:
            await self.kick(consultation=consultation_id, advisors=(missed,))

    # --- the sweep ------------------------------------------------------------------------

    async def sweep(self) -> None:
        """What a lost change missed (see the module's docstring)."""
        app = self.app
        async with app[DB].read() as session:
            due = await dispatch.due_offers(session)
        for consultation_id in due:
            await self._expire(consultation_id)
        async with app[DB].transaction() as session:
            await dispatch.give_up_stale(session, app[SETTINGS])
        await self.kick(general=True)
        await self._places.kick()

    # --- queue places ---------------------------------------------------------------------

    def places_later(self) -> None:
        """A shopper's page opened or closed: only present shoppers hold a place, so places
        move. Recomputed at most once per ``PLACES_SETTLE`` seconds however many pages come
        and go (a reconnect storm makes one recompute a second, not one per socket)."""
        if self._places_timer is None:
            loop = asyncio.get_running_loop()
            self._places_timer = loop.call_later(PLACES_SETTLE, self._places_due)

    def _places_due(self) -> None:
        self._places_timer = None
        self.places_soon()

    def places_soon(self) -> None:
        if BACKGROUND in self.app:
            self._places_pending += 1
            self.app[BACKGROUND].spawn(self._places_kick(), name="queue-places")

    async def _places_kick(self) -> None:
        try:
            await self._places.kick()
        finally:
            self._places_pending -= 1

    @property
    def busy(self) -> bool:
        """Deciding, or queue places still to send (for tests and the benchmark)."""
        return self._decide.busy or self._places.busy or self._places_pending > 0

    async def _send_places(self) -> None:
        app, settings = self.app, self.app[SETTINGS]
        db = app[DB]
        if db.is_sqlite:
            # One process and one writer: a read, so no chat send waits on the recompute.
            async with db.read() as session:
                places = await queue.positions(session, settings)
            await self._tell(places)
            return
        async with db.transaction() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PLACES_LOCK})
            places = await queue.positions(session, settings)
            # Told under the lock: the next recompute (maybe another process's) comes after.
            await self._tell(places)

    async def _tell(self, places: list[tuple[uuid.UUID, QueuePosition]]) -> None:
        values = {str(p.consultation_id): told(p) for _, p in places}
        moved = await self._book.changed(values)
        send = self.app[DB].sink()
        for shopper_id, place in places:
            if str(place.consultation_id) in moved:
                room = rooms.shopper_of(shopper_id, place.consultation_id)
                await send(
                    Outgoing(queue.QUEUE_POSITION, place.model_dump(mode="json"), room, rooms.SHOPPER_NS)
                )
                self.places_sent += 1

    async def place_of(self, consultation_id: uuid.UUID) -> QueuePosition | None:
        """The place this consultation's shopper was last told (None: not told yet)."""
        value = await self._book.get(str(consultation_id))
        return place_from(consultation_id, value) if value is not None else None

    # --- attendance -----------------------------------------------------------------------

    async def attend(self) -> None:
        """End consultations nobody is in any more and give up places nobody holds (see
        consultations/attendance.py); on the tick, so no deploy can cancel it."""
        app = self.app
        acted = False
        try:
            async with app[DB].read() as session:
                suspects = await attendance.suspects(session)
            for consultation_id in suspects:
                async with app[DB].transaction() as session:
                    outcome = await attendance.judge(session, app[SETTINGS], consultation_id)
                acted = acted or outcome.ended or outcome.abandoned
        except Exception as exc:  # retried on the next tick
            log_job_failure(log, "attendance check failed", exc)
        if acted:
            await self.kick(general=True)

    async def start(self) -> None:
        self._attend.start()
        self._sweep.start()

    async def stop(self) -> None:
        await self._attend.stop()
        await self._sweep.stop()
        for timer in self._timers.values():
            timer.cancel()
        if self._places_timer is not None:
            self._places_timer.cancel()
        self._timers.clear()
        if self._redis is not None:
            # A places pass or a returning page's read may still come after this (they run as
            # background tasks and socket events, which end later in shutdown): they get a local
            # book, since a closed redis-py client would quietly open a new connection and leave
            # it to the garbage collector.
            self._book = LocalBook()
            await self._redis.aclose()


RUNNER = web.AppKey("routing_runner", RoutingRunner)


async def kick(
    app: web.Application,
    *,
    consultation: uuid.UUID | None = None,
    advisors: Iterable[uuid.UUID | None] = (),
    general: bool | None = None,
) -> None:
    """Route what a change allows: ``consultation`` (joined, declined, timed out),
    ``advisors`` (became free); ``general`` (the default with neither) looks at the whole
    queue while anyone is free, for changes that do not say whom they free (presence).
    ``general=False`` with neither: only queue places moved (a shopper left)."""
    advisors = tuple(advisors)
    if general is None:
        general = consultation is None and not any(a is not None for a in advisors)
    if RUNNER in app:
        await app[RUNNER].kick(consultation=consultation, advisors=advisors, general=general)


def places_moved(app: web.Application) -> None:
    """A shopper's page opened or closed (see ``RoutingRunner.places_later``)."""
    if RUNNER in app:
        app[RUNNER].places_later()


async def runner_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = RoutingRunner(app)
    app[RUNNER] = runner
    await runner.start()
    yield
    await runner.stop()
