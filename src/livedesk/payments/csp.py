"""The call page's Content-Security-Policy, widened for Stripe only where and when needed.

Stripe's Payment Element loads https://js.stripe.com and frames Stripe's own pages, so the
call page (``/call/``) allows exactly those origins — and only when Stripe keys are set. Every
other page, and the call page in sandbox mode, keeps the strict policy of ``pages/routes.py``.
This hook runs after the pages' hook (it is registered later in ``create_app``) and rewrites
the header that hook set.
"""

from __future__ import annotations

from aiohttp import web

from livedesk.models import PaymentProviderName
from livedesk.payments.providers import PROVIDER

PAGE_PREFIX = "/call/"
_STRIPE_SOURCES = {
    "script-src": "https://js.stripe.com",
    "frame-src": "https://js.stripe.com https://hooks.stripe.com",
    "connect-src": "https://api.stripe.com",
    "img-src": "https://*.stripe.com",
}


def with_stripe(policy: str) -> str:
    """``policy`` with Stripe's origins added to the directives the Payment Element needs."""
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    names = {d.split()[0] for d in directives}
    out = []
    for directive in directives:
        name = directive.split()[0]
        extra = _STRIPE_SOURCES.get(name)
        out.append(f"{directive} {extra}" if extra else directive)
    for name, sources in _STRIPE_SOURCES.items():
        if name not in names:
            out.append(f"{name} 'self' {sources}")
    return "; ".join(out)


async def _widen_for_stripe(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith(PAGE_PREFIX):
        return
    if request.app[PROVIDER].name != PaymentProviderName.STRIPE:
        return
    policy = response.headers.get("Content-Security-Policy")
    if policy:
        response.headers["Content-Security-Policy"] = with_stripe(policy)


def setup_csp(app: web.Application) -> None:
    app.on_response_prepare.append(_widen_for_stripe)
