"""The composition root: ``create_app(settings)`` builds and wires everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from livedesk.customers import routes as customer_routes
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.db import Database
from livedesk.kit.http import MAX_BODY_KEY, error_middleware
from livedesk.kit.ratelimit import RateLimits
from livedesk.pages import routes as page_routes
from livedesk.settings import Settings
from livedesk.staff import routes as staff_routes
from livedesk.staff.auth import csrf_middleware
from livedesk.system import routes as system_routes

WEB_DIR = Path(__file__).resolve().parents[2] / "web"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, csrf_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[MAX_BODY_KEY] = settings.max_body_bytes
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_rate_limits)

    system_routes.setup_routes(app)
    staff_routes.setup_routes(app)
    customer_routes.setup_routes(app)
    page_routes.setup_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app[DB] = Database(settings.effective_database_url)
    yield
    await app[DB].dispose()


async def _rate_limits(app: web.Application) -> AsyncIterator[None]:
    app[RATE_LIMITS] = RateLimits(app[SETTINGS].redis_url)
    yield
