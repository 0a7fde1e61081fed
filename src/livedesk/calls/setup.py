"""How calls plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.calls.monitoring_setup import monitoring_ctx


def setup(app: web.Application) -> None:
    """The monitoring hub and its watch.

    After recording's setup, which brings up the placement and the leg registry this uses;
    at shutdown the monitors stop before the legs close."""
    app.cleanup_ctx.append(monitoring_ctx)
