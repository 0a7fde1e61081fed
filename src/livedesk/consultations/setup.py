"""How consultations plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.consultations import routes
from livedesk.consultations.chat_redelivery import redelivery_ctx
from livedesk.consultations.chat_store_setup import chat_store_ctx
from livedesk.consultations.connections import SHOPPER_CONNECTIONS, ShopperConnections
from livedesk.consultations.file_sweep import file_sweep_ctx
from livedesk.consultations.routing_runner import runner_ctx


def setup(app: web.Application) -> None:
    """The chat store, the jobs (chat redelivery, routing, the unsent-file sweep) and the routes.

    After the realtime transport: redelivery fans out through it, and at shutdown the routing
    runner stops before the process's connection rows go (or it would judge this process's
    shoppers gone). The chat store serves only ``chat.send``, a socket event, and sockets are
    served only between start-up and ``on_shutdown``, so its place among the contexts is free."""
    app[SHOPPER_CONNECTIONS] = ShopperConnections(app)
    app.cleanup_ctx.append(chat_store_ctx)
    app.cleanup_ctx.append(redelivery_ctx)
    app.cleanup_ctx.append(runner_ctx)
    app.cleanup_ctx.append(file_sweep_ctx)
    routes.setup_routes(app)
