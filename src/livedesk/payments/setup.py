"""How payments plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from aiohttp import web

from livedesk.kit.context import SETTINGS
from livedesk.payments import booking_routes, routes
from livedesk.payments.csp import setup_csp
from livedesk.payments.deposit_jobs import deposit_jobs_ctx
from livedesk.payments.providers import setup_provider


def setup(app: web.Application) -> None:
    """Routes (payment requests, booking deposits), the deposits job, the provider (Stripe
    with keys, else the sandbox) and the sources it adds to the call page's CSP (after the
    provider: they depend on which one it is)."""
    setup_provider(app, app[SETTINGS])
    routes.setup_routes(app)
    booking_routes.setup_routes(app)
    app.cleanup_ctx.append(deposit_jobs_ctx)
    setup_csp(app)
