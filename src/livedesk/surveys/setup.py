"""How surveys plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.surveys import mail, routes


def setup(app: web.Application) -> None:
    """The satisfaction mail's link signer and retry sweep, and the routes."""
    app.cleanup_ctx.append(mail.surveys_ctx)
    routes.setup_routes(app)
