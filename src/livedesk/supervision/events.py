"""Socket.IO events of the supervisor board (staff namespace, supervisors and admins only).

``board.snapshot`` answers the whole board; after it, the page keeps it current from
``presence.changed`` and ``consultation.updated``, which every supervisor socket receives
in the supervisors room (joined at connect, see ``staff/events.py``). ``board.figures``
answers one day's figures, for a team or all (shared for a moment between the pages asking at
once, see ``cache.py``).
"""

from __future__ import annotations

from typing import Any

from livedesk.identity import Principal
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Forbidden
from livedesk.models import Role
from livedesk.realtime.protocol import EventContext, EventSpec
from livedesk.supervision import board
from livedesk.supervision.cache import figures_of
from livedesk.supervision.schemas import BoardQuery, BoardSnapshot, Figures, FiguresQuery

SUPERVISING_ROLES = (Role.SUPERVISOR, Role.ADMIN)


def require_supervisor(ctx: EventContext) -> Principal:
    staff = ctx.require_staff()
    if staff.role not in SUPERVISING_ROLES:
        raise Forbidden("Only supervisors and admins may watch the board", code="forbidden")
    return staff


async def board_snapshot(ctx: EventContext, _payload: BoardQuery) -> BoardSnapshot:
    require_supervisor(ctx)
    # A snapshot is taken on (re)connect: its figures are fresh, and shared with the pages
    # that ask next.
    today = await figures_of(ctx.app, fresh_after=utcnow())
    async with ctx.app[DB].read() as session:
        return await board.snapshot(session, ctx.app[SETTINGS], today)


async def board_figures(ctx: EventContext, payload: FiguresQuery) -> Figures:
    require_supervisor(ctx)
    return await figures_of(
        ctx.app, day=payload.day, team_id=payload.team_id, fresh_after=payload.fresh_after
    )


STAFF: list[EventSpec[Any]] = [
    EventSpec("board.snapshot", BoardQuery, board_snapshot),
    EventSpec("board.figures", FiguresQuery, board_figures),
]
