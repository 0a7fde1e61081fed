"""Closing a staff member's open sockets when their sessions end (disabled account, new role
or password): the sockets were authorised under what no longer holds."""

from __future__ import annotations

import uuid

from aiohttp import web
from sqlalchemy import select

from livedesk.kit.context import DB
from livedesk.models import StaffConnection
from livedesk.realtime import rooms
from livedesk.realtime.emit import SIO


async def disconnect_staff(app: web.Application, staff_id: uuid.UUID) -> int:
    """Disconnect every tab of this staff member, in whichever process holds it (the Redis
    manager forwards a disconnect for a socket another process owns)."""
    async with app[DB].read() as session:
        sids = (
            await session.scalars(select(StaffConnection.sid).where(StaffConnection.staff_id == staff_id))
        ).all()
    for sid in sids:
        await app[SIO].disconnect(sid, namespace=rooms.STAFF_NS)
    return len(sids)
