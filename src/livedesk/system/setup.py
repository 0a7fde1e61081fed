"""How system plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.system import audit_routes, mail_status, routes


def setup(app: web.Application) -> None:
    """Routes (and the mail status said once at start)."""
    routes.setup_routes(app)
    mail_status.setup_routes(app)
    audit_routes.setup_routes(app)
