"""How visitors plugs into the app: its one ``setup``, called from ``create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from livedesk.identity import TOKENS, VisitorTokens
from livedesk.kit.context import SETTINGS
from livedesk.visitors import email_link, routes


def setup(app: web.Application) -> None:
    """The token signer (a cleanup context: it reads the settings at start) and the routes."""
    app.cleanup_ctx.append(_visitor_tokens)
    routes.setup_routes(app)
    email_link.setup_routes(app)


async def _visitor_tokens(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[TOKENS] = VisitorTokens(settings.secret_key.get_secret_value(), settings.visitor_token_hours * 3600)
    yield
