"""How catalogue plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.catalogue import routes


def setup(app: web.Application) -> None:
    """The routes."""
    routes.setup_routes(app)
