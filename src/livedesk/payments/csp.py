"""The call page's Content-Security-Policy admits Stripe only where and when needed.

Stripe's Payment Element loads https://js.stripe.com and frames Stripe's own pages, so the
call page (``/call/``) and the booking page (``/booking/``, deposits) allow exactly those
origins — and only when Stripe keys are set. Every
other page, and the call page in sandbox mode, keeps the strict policy of ``pages/routes.py``.
The sources are added to the policy when it is composed (``kit/csp.py``), not by rewriting a
header another hook set.
"""

from __future__ import annotations

from aiohttp import web

from livedesk.kit.csp import csp_sources, widen
from livedesk.models import PaymentProviderName
from livedesk.payments.providers import PROVIDER

PAGE_PREFIX = "/call/"
BOOKING_PREFIX = "/booking/"
_STRIPE_SOURCES = {
    "script-src": "https://js.stripe.com",
    "frame-src": "https://js.stripe.com https://hooks.stripe.com",
    "connect-src": "https://api.stripe.com",
    "img-src": "https://*.stripe.com",
}


def with_stripe(policy: str) -> str:
    """``policy`` with Stripe's origins added to the directives the Payment Element needs."""
    return widen(policy, _STRIPE_SOURCES)


def setup_csp(app: web.Application) -> None:
    """After the provider is set up: the provider is chosen once, at start, from the settings."""
    if app[PROVIDER].name == PaymentProviderName.STRIPE:
        csp_sources(app).allow(PAGE_PREFIX, _STRIPE_SOURCES)
        # The booking page takes a type's deposit or price with the same Payment Element.
        csp_sources(app).allow(BOOKING_PREFIX, _STRIPE_SOURCES)
