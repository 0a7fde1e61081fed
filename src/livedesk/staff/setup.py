"""How staff plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.kit.context import SETTINGS
from livedesk.staff import advisors, photos, routes, signin


def setup(app: web.Application) -> None:
    """Sign-in budgets (parsed now: a malformed one stops the app at start) and the routes."""
    signin.setup(app, app[SETTINGS])
    routes.setup_routes(app)
    photos.setup_routes(app)
    advisors.setup_routes(app)
