"""How customers plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.customers import history_routes, routes


def setup(app: web.Application) -> None:
    """The routes."""
    routes.setup_routes(app)
    history_routes.setup_routes(app)
