"""Wiring of the payments capability (and the catalogue it sells from) into the app."""

from __future__ import annotations

from aiohttp import web

from livedesk.catalogue import routes as catalogue_routes
from livedesk.kit.context import SETTINGS
from livedesk.payments import routes
from livedesk.payments.csp import setup_csp
from livedesk.payments.providers import setup_provider


def setup_payments(app: web.Application) -> None:
    """Routes, the provider (Stripe with keys, else the sandbox) and the call page's CSP.
    Call after the pages are set up: the CSP hook rewrites the header they set."""
    setup_provider(app, app[SETTINGS])
    catalogue_routes.setup_routes(app)
    routes.setup_routes(app)
    setup_csp(app)
