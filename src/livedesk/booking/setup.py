"""How the booking capability plugs into ``create_app``: its routes and its jobs."""

from __future__ import annotations

from aiohttp import web

from livedesk.booking import routes, staff_routes
from livedesk.booking.jobs import jobs_ctx


def setup_booking(app: web.Application) -> None:
    """Routes and the booking jobs (mails, no-shows), hooked into ``create_app``."""
    app.cleanup_ctx.append(jobs_ctx)
    routes.setup_routes(app)
    staff_routes.setup_routes(app)
