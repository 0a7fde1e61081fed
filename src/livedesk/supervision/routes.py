"""HTTP routes of supervision: the board and one day's figures (supervisors and admins),
and the Prometheus endpoint."""

from __future__ import annotations

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r401, r403, r422

from livedesk.identity import guarded, require_staff
from livedesk.kit.clock import utcnow
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.supervision import board, figures
from livedesk.supervision.cache import FIGURES_CACHE, FiguresCache, figures_of
from livedesk.supervision.events import SUPERVISING_ROLES
from livedesk.supervision.schemas import BoardSnapshot, DayQuery, Figures, TeamQuery


@guarded(*SUPERVISING_ROLES)
async def get_board(
    request: web.Request,
) -> r200[BoardSnapshot] | r401[ErrorResponse] | r403[ErrorResponse]:
    """The supervisor board as of now: advisors with their presence, open consultations,
    alerts and today's figures (the live page takes the same over Socket.IO, then changes).

    Tags: supervision
    """
    await require_staff(request, *SUPERVISING_ROLES)
    today = await figures_of(request.app, fresh_after=utcnow())
    async with request.app[DB].read() as session:
        out = await board.snapshot(session, request.app[SETTINGS], today)
    return model_json(out)


@guarded(*SUPERVISING_ROLES)
async def get_figures(
    request: web.Request,
    day: DayQuery = None,
    team_id: TeamQuery = None,
) -> r200[Figures] | r401[ErrorResponse] | r403[ErrorResponse] | r422[ErrorResponse]:
    """One day's figures in the brand's time zone (default today), for one team or all:
    offered, answered, abandoned, missed, waits, handle time, conversion, revenue,
    satisfaction, and the same per hour.

    Tags: supervision
    """
    await require_staff(request, *SUPERVISING_ROLES)
    async with request.app[DB].read() as session:
        out = await figures.figures_for_day(session, day=day, team_id=team_id)
    return model_json(out)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/supervision/board", get_board)
    app.router.add_get("/api/v1/supervision/figures", get_figures)
    app[FIGURES_CACHE] = FiguresCache()
