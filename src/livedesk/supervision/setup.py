"""How supervision plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.supervision import metrics, routes


def setup(app: web.Application) -> None:
    """The routes and the Prometheus metrics."""
    routes.setup_routes(app)
    metrics.setup_metrics(app)
