"""How booking plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.booking import routes, staff_routes
from livedesk.booking.jobs import jobs_ctx


def setup(app: web.Application) -> None:
    """Routes and the booking jobs (mails, no-shows)."""
    app.cleanup_ctx.append(jobs_ctx)
    routes.setup_routes(app)
    staff_routes.setup_routes(app)
