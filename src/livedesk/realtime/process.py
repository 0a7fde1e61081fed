"""This process's identity and heartbeat, and the sweep that cleans up after dead ones.

Sockets live in one process, and so do the connection rows behind presence (including a
closed tab's row kept through the presence grace). A process that stops removes its rows and
has presence recomputed; one that dies leaves them until the others notice its stale
heartbeat and remove them. Either way no advisor stays online without an open console.

A replica drained for a deploy (``realtime/drain.py``) hands its open consoles over instead:
their rows stay, and the process's heartbeat is left to go stale exactly when the presence
grace ends, so the others' sweep removes them then. A console that reconnected elsewhere in
between has its new row, and the advisor never shows offline.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.kit.logging import get_logger
from livedesk.kit.periodic import Periodic
from livedesk.models import AdvisorPresence, AppProcess, PresenceStatus, ShopperConnection, StaffConnection

log = get_logger("livedesk.process")

HEARTBEAT_EVERY = 5.0
DEAD_AFTER = timedelta(seconds=20)

OnStaffGone = Callable[[set[uuid.UUID]], Awaitable[None]]
OnShoppersGone = Callable[[set[uuid.UUID]], Awaitable[None]]
# This process's open sockets as the transport knows them: (staff sid → staff id,
# shopper sid → shopper id).
OpenSockets = Callable[[], tuple[dict[str, uuid.UUID], dict[str, uuid.UUID]]]


class ProcessRegistry:
    def __init__(
        self,
        db: Database,
        on_staff_gone: OnStaffGone,
        on_shoppers_gone: OnShoppersGone,
        open_sockets: OpenSockets | None = None,
    ) -> None:
        self.db = db
        self.id = uuid.uuid4().hex
        self._on_staff_gone = on_staff_gone
        self._on_shoppers_gone = on_shoppers_gone
        self._open_sockets = open_sockets
        self._registered = False
        # A database blip fails one beat (logged), never the heartbeat.
        self._job = Periodic("livedesk-heartbeat", self._beat_and_sweep, every=HEARTBEAT_EVERY)

    async def start(self) -> None:
        try:
            await self.beat()
            await self.sweep()
        except Exception:  # the database may come up later: the heartbeat loop retries
            log.exception("could not register this process yet")
        self._job.start()

    async def beat(self) -> None:
        """Tell the others this process is alive (and, if one of them swept it meanwhile, give
        its open sockets their rows back)."""
        restored: set[uuid.UUID] = set()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(AppProcess).where(AppProcess.id == self.id).values(heartbeat_at=utcnow())
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                session.add(AppProcess(id=self.id))
                if self._registered:
                    # Another process took this one for dead (its heartbeat ran late under a
                    # burst: the beat waits on the pool like everything else) and swept its
                    # rows, while its sockets are still open: write them again, in the same
                    # transaction, so a failure leaves the next beat to try again.
                    restored = await self._restore(session)
        self._registered = True
        if restored:
            log.warning("connection rows restored after a peer's sweep", staff=len(restored))
            # The same recompute as when tabs go: these advisors are back online.
            await self._on_staff_gone(restored)

    async def _restore(self, session: AsyncSession) -> set[uuid.UUID]:
        if self._open_sockets is None:
            return set()
        staff, shoppers = self._open_sockets()
        mine_staff = select(StaffConnection.sid).where(StaffConnection.process_id == self.id)
        kept = set((await session.scalars(mine_staff)).all())
        session.add_all(
            StaffConnection(sid=sid, staff_id=who, process_id=self.id)
            for sid, who in staff.items()
            if sid not in kept
        )
        mine_shoppers = select(ShopperConnection.sid).where(ShopperConnection.process_id == self.id)
        kept = set((await session.scalars(mine_shoppers)).all())
        session.add_all(
            ShopperConnection(sid=sid, shopper_id=who, process_id=self.id)
            for sid, who in shoppers.items()
            if sid not in kept
        )
        return set(staff.values())

    async def stop(self, hand_over: Collection[str] = (), grace_seconds: float = 0.0) -> None:
        """Forget this process's rows; the staff rows of ``hand_over`` (sids told to reconnect
        elsewhere) are left for the others' sweep ``grace_seconds`` from now instead."""
        await self._job.stop()
        kept = set(hand_over) if grace_seconds > 0 else set()
        try:
            gone = await self._forget_self(kept, grace_seconds)
        except Exception:
            log.exception("could not unregister this process")
            return
        if gone:
            await self._on_staff_gone(gone)

    async def _forget_self(self, kept: set[str], grace_seconds: float) -> set[uuid.UUID]:
        mine = StaffConnection.process_id == self.id
        dropped = mine & StaffConnection.sid.not_in(kept) if kept else mine
        async with self.db.transaction() as session:
            gone = set((await session.scalars(select(StaffConnection.staff_id).where(dropped))).all())
            await session.execute(delete(StaffConnection).where(dropped))
            # Shoppers on this process reconnect to another one; their place in the queue
            # is judged there (or by the sweep), not here.
            await session.execute(delete(ShopperConnection).where(ShopperConnection.process_id == self.id))
            if kept:
                # Stale (to the sweep) when the grace ends: the kept rows go then.
                stale_at = utcnow() - DEAD_AFTER + timedelta(seconds=grace_seconds)
                await session.execute(
                    update(AppProcess).where(AppProcess.id == self.id).values(heartbeat_at=stale_at)
                )
            else:
                await session.execute(delete(AppProcess).where(AppProcess.id == self.id))
        return gone

    async def _beat_and_sweep(self) -> None:
        await self.beat()
        await self.sweep()

    async def sweep(self) -> None:
        """Remove connections held by processes that stopped beating."""
        cutoff = utcnow() - DEAD_AFTER
        # Nearly always there is nothing to remove: find that out from a read, without the
        # write lock (on SQLite, the lock every chat send needs too).
        # This process is never among the dead, however late its own heartbeat: under a
        # burst (a reconnect storm) the beat can wait on the pool past the cutoff, and the
        # sweep then dropped the rows of its own open sockets (their shoppers judged gone,
        # their advisors offline).
        async with self.db.read() as session:
            if not await _anything_to_sweep(session, cutoff, self.id):
                return
        async with self.db.transaction() as session:
            stale = select(AppProcess.id).where(AppProcess.heartbeat_at < cutoff, AppProcess.id != self.id)
            dead = set((await session.scalars(stale)).all())
            live = (set((await session.scalars(select(AppProcess.id))).all()) - dead) | {self.id}
            gone = await _drop_connections(session, StaffConnection, StaffConnection.staff_id, live)
            shoppers = await _drop_connections(session, ShopperConnection, ShopperConnection.shopper_id, live)
            if dead:
                await session.execute(delete(AppProcess).where(AppProcess.id.in_(dead)))
            gone |= set((await session.scalars(_shown_online_without_a_tab())).all())
        if gone:
            log.info("removed connections of stopped processes", staff=len(gone))
            await self._on_staff_gone(gone)
        if shoppers:
            await self._on_shoppers_gone(shoppers)


async def _anything_to_sweep(session: AsyncSession, cutoff: datetime, me: str) -> bool:
    live = select(AppProcess.id).where(or_(AppProcess.heartbeat_at >= cutoff, AppProcess.id == me))
    probes = [
        select(AppProcess.id).where(AppProcess.heartbeat_at < cutoff, AppProcess.id != me),
        select(StaffConnection.sid).where(StaffConnection.process_id.not_in(live)),
        select(ShopperConnection.sid).where(ShopperConnection.process_id.not_in(live)),
        _shown_online_without_a_tab(),
    ]
    for probe in probes:
        if await session.scalar(probe.limit(1)) is not None:
            return True
    return False


def _shown_online_without_a_tab() -> Select[uuid.UUID]:
    """Advisors whose stored presence is not offline while no connection row backs it. Rows
    and status change in one transaction everywhere else, so this only finds what a crash
    between two transactions (this sweep's own, say) left behind: the backstop."""
    tab = select(StaffConnection.sid).where(StaffConnection.staff_id == AdvisorPresence.staff_id)
    return select(AdvisorPresence.staff_id).where(
        AdvisorPresence.status != PresenceStatus.OFFLINE, ~tab.exists()
    )


async def _drop_connections(
    session: AsyncSession,
    model: type[StaffConnection] | type[ShopperConnection],
    owner: InstrumentedAttribute[uuid.UUID],
    live: set[str],
) -> set[uuid.UUID]:
    """Delete the socket rows no live process holds; whose they were."""
    rows = (
        await session.execute(select(model.sid, owner).where(model.process_id.not_in(live or {""})))
    ).all()
    if rows:
        await session.execute(delete(model).where(model.sid.in_([sid for sid, _ in rows])))
    return {who for _, who in rows}


# This process's registry on the app (set by ``realtime.server``): capabilities read its ``id``
# to stamp the connection rows they write.
PROCESS = web.AppKey("process", ProcessRegistry)
