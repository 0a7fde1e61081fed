"""kit/csp.py: the pages' CSP is composed once, from the base and what capabilities admitted at
setup — no hook rewrites a header another set."""

from __future__ import annotations

from aiohttp import web

from livedesk.kit.csp import CSP_SOURCES, CspSources, csp_sources
from livedesk.pages.routes import content_security_policy

STRIPE = {"script-src": "https://js.stripe.com", "frame-src": "https://js.stripe.com"}


def test_sources_are_added_only_under_their_prefix() -> None:
    sources = CspSources()
    sources.allow("/call/", STRIPE)
    call = content_security_policy("/call/", "'self'", sources)
    assert "script-src 'self' https://js.stripe.com;" in call
    # A directive the base lacks is added after the others, with 'self' kept.
    assert call.endswith("; frame-src 'self' https://js.stripe.com")
    assert call.startswith("default-src 'self'; script-src 'self' https://js.stripe.com; style-src 'self';")
    assert content_security_policy("/widget/", "'self'", sources) == content_security_policy("/widget/")
    assert content_security_policy("/call/", "'self'", CspSources()) == content_security_policy("/call/")


def test_the_registry_is_made_on_first_use_whoever_sets_up_first() -> None:
    app = web.Application()
    assert CSP_SOURCES not in app
    csp_sources(app).allow("/call/", STRIPE)
    csp_sources(app).allow("/call/", {"connect-src": "https://api.example"})
    policy = content_security_policy("/call/x", "'self'", app[CSP_SOURCES])
    assert "connect-src 'self' https://api.example;" in policy
    assert "script-src 'self' https://js.stripe.com;" in policy
