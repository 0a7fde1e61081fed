"""How integrations plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.integrations import import_routes, routes, shop_routes
from livedesk.integrations.delivery import delivery_ctx


def setup(app: web.Application) -> None:
    """The webhook delivery job and the routes."""
    app.cleanup_ctx.append(delivery_ctx)
    import_routes.setup_routes(app)
    routes.setup_routes(app)
    shop_routes.setup_routes(app)
