"""The OpenAPI document is generated from the models that validate requests, and lists every
API route."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from openapi_spec_validator import validate

from livedesk.system.routes import OPENAPI_PATH

_UNDOCUMENTED = {OPENAPI_PATH}


def _api_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or route.method == "HEAD":
            continue
        documented = path.startswith("/api/") or path in {"/healthz", "/readyz"}
        if documented and path not in _UNDOCUMENTED:
            routes.add((route.method.lower(), path))
    return routes


async def test_document_is_valid_openapi(client: Any) -> None:
    response = await client.get(OPENAPI_PATH)
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.")
    validate(spec)


async def test_every_api_route_is_documented(client: Any, app: web.Application) -> None:
    spec = await (await client.get(OPENAPI_PATH)).json()
    documented = {(method, path) for path, item in spec["paths"].items() for method in item}
    routes = _api_routes(app)
    assert routes, "no API routes found"
    missing = routes - documented
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"


async def test_request_body_schema_comes_from_the_validating_model(client: Any) -> None:
    spec = await (await client.get(OPENAPI_PATH)).json()
    body = spec["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1]
    schema = spec["components"]["schemas"][name]
    assert set(schema["required"]) == {"email", "password"}
    assert schema.get("additionalProperties") is False
