"""Staff Socket.IO events of the staff capability: presence."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from aiohttp import web

from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.logging import get_logger
from livedesk.models import PresenceStatus
from livedesk.realtime import rooms
from livedesk.realtime.emit import SIO
from livedesk.realtime.process import PROCESS
from livedesk.realtime.protocol import EventContext, EventModel, EventSpec, NoPayload
from livedesk.staff import presence
from livedesk.staff.announce import after_presence_change, announce

log = get_logger("livedesk.presence")


class PresenceSet(EventModel):
    status: Literal["available", "away"]


async def refresh(app: web.Application, staff_ids: set[uuid.UUID]) -> None:
    """Recompute presence for these advisors (after tabs closed or a process died)."""
    for staff_id in staff_ids:
        async with app[DB].transaction() as session:
            view, changed = await presence.recompute(session, staff_id)
            if changed:
                announce(session, view)
    await after_presence_change(app)


async def on_connect(ctx: EventContext) -> None:
    if ctx.staff is None:
        return
    if ctx.staff.role.value in ("supervisor", "admin"):
        await ctx.app[SIO].enter_room(ctx.sid, rooms.supervisors(), namespace=rooms.STAFF_NS)
    if ctx.staff.role.value == "advisor":
        await ctx.app[SIO].enter_room(ctx.sid, rooms.advisors(), namespace=rooms.STAFF_NS)
    async with ctx.app[DB].transaction() as session:
        view, changed = await presence.connect(session, ctx.staff.staff_id, ctx.sid, ctx.app[PROCESS].id)
        if changed:
            announce(session, view)
    if changed:
        await after_presence_change(ctx.app)


async def on_disconnect(ctx: EventContext) -> None:
    if ctx.staff is None:
        return
    app, sid = ctx.app, ctx.sid
    grace = app[SETTINGS].presence_grace_seconds
    if not grace:
        await release(app, sid)
        return

    async def later() -> None:
        # The tab's row stays through the grace period: a reload or a network blip comes
        # back meanwhile and the advisor never flickers offline. Should this process stop
        # first, its rows go with it (realtime/process.py), so the timer is not the only
        # way the advisor ever goes offline.
        await asyncio.sleep(grace)
        try:
            await release(app, sid)
        except Exception:
            log.exception("presence release failed")

    app[BACKGROUND].spawn(later(), name="presence-grace")


async def release(app: web.Application, sid: str) -> None:
    """Forget a closed tab and announce what that changes."""
    async with app[DB].transaction() as session:
        result = await presence.release(session, sid)
        changed = result is not None and result[1]
        if result is not None and changed:
            announce(session, result[0])
    if changed:
        await after_presence_change(app)


async def presence_set(ctx: EventContext, payload: PresenceSet) -> dict[str, str]:
    staff = ctx.require_staff()
    async with ctx.app[DB].transaction() as session:
        view, changed = await presence.choose(session, staff.staff_id, PresenceStatus(payload.status))
        if changed:
            announce(session, view)
    if changed:
        await after_presence_change(ctx.app)
    return view.as_event()


async def presence_list(ctx: EventContext, _payload: NoPayload) -> list[dict[str, str]]:
    ctx.require_staff()
    async with ctx.app[DB].read() as session:
        return [v.as_event() for v in await presence.list_all(session)]


STAFF: list[EventSpec[Any]] = [
    EventSpec("presence.set", PresenceSet, presence_set),
    EventSpec("presence.list", NoPayload, presence_list),
]
