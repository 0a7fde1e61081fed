"""How pages plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.pages import routes


def setup(app: web.Application) -> None:
    """The pages and their headers."""
    routes.setup_routes(app)
