"""Operational routes: liveness, readiness, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r503
from aiohttp_pydantic.oas.view import generate_oas
from pydantic import BaseModel
from sqlalchemy import text

from livedesk import __version__
from livedesk.kit.context import DB
from livedesk.kit.http import ErrorResponse, document_common_errors, endpoint, error_response, json_ok
from livedesk.kit.logging import get_logger
from livedesk.kit.migrate import current_revision, head_revision
from livedesk.realtime.drain import is_draining
from livedesk.system import openapi as oas

log = get_logger("livedesk.system")

OPENAPI_PATH = "/api/openapi.json"
_OPENAPI_CACHE = web.AppKey("openapi_cache", dict)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migration: str | None
    expected_migration: str | None


@endpoint
async def healthz(request: web.Request) -> r200[Health]:
    """The process is alive and serving (no dependency checks)."""
    return json_ok({"status": "ok"})


@endpoint
async def readyz(request: web.Request) -> r200[Readiness] | r503[ErrorResponse]:
    """Ready to serve: the database answers and its schema is at the newest migration."""
    if is_draining(request.app):
        # SIGTERM: the load balancer is to stop sending here (realtime/drain.py).
        return error_response(503, "draining", "This replica is stopping")
    db = request.app[DB]
    expected = head_revision(db.url)
    try:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))
        current = await current_revision(db.engine)
    except Exception as exc:  # any driver error means "not ready", never a crash
        log.warning("readiness check failed", error=str(exc))
        return error_response(503, "database_unavailable", "The database cannot be reached")
    if current != expected:
        return error_response(
            503,
            "migrations_pending",
            f"Database schema is at {current or 'nothing'}, expected {expected}: run `livedesk db upgrade`",
            {"migration": current, "expected_migration": expected},
        )
    return json_ok(
        {"status": "ready", "database": "ok", "migration": current, "expected_migration": expected}
    )


def build_openapi(app: web.Application) -> dict[str, Any]:
    oas.use_openapi_3_0_translation()
    spec: dict[str, Any] = generate_oas([app], version_spec=__version__, title_spec="livedesk API")
    schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    # aiohttp-pydantic leaves the nested models of response schemas under "$defs", which
    # OpenAPI 3.0 does not allow; they belong beside the others in components.schemas.
    for schema in list(schemas.values()):
        schemas.update(schema.pop("$defs", {}))
    document_common_errors(spec)
    oas.finish(spec)
    return spec


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 document, generated from the pydantic models that validate requests."""
    cache = request.app[_OPENAPI_CACHE]
    if "spec" not in cache:
        cache["spec"] = build_openapi(request.app)
    return json_ok(cache["spec"])


def setup_routes(app: web.Application) -> None:
    app[_OPENAPI_CACHE] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(OPENAPI_PATH, openapi)
