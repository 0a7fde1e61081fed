"""What the staff capability tells others when an advisor's presence changes: the
``presence.changed`` event (to supervisors and the advisor's own tabs, after commit) and the
in-process listeners the composition root registers under ``PRESENCE_LISTENERS`` (routing),
so staff imports no capability that builds on it. Services and socket handlers alike call
``announce``; a socket module is never called from a service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.realtime import rooms
from livedesk.realtime.emit import emit
from livedesk.staff.outgoing import PRESENCE_CHANGED
from livedesk.staff.presence import PresenceView

PresenceListener = Callable[[web.Application], Awaitable[None]]
PRESENCE_LISTENERS = web.AppKey("presence_listeners", tuple[PresenceListener, ...])


def presence_recipients(view: PresenceView) -> list[str]:
    """Who hears of a presence change: supervisors, and the advisor's own tabs."""
    return [rooms.supervisors(), rooms.staff(view.staff_id)]


def announce(session: AsyncSession, view: PresenceView) -> None:
    for room in presence_recipients(view):
        emit(session, PRESENCE_CHANGED, view.as_event(), room=room, namespace=rooms.STAFF_NS)


async def after_presence_change(app: web.Application) -> None:
    """Tell the listeners the composition root registered (routing may now have someone new
    to offer to)."""
    for listener in app.get(PRESENCE_LISTENERS, ()):
        await listener(app)
