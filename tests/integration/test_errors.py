"""The one error shape: every 4xx/5xx is {"error": {"code", "message", "details"}}, names the
offending field, and never shows a stack trace."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from livedesk.app import create_app
from livedesk.settings import Settings

LOGIN = "/api/v1/auth/login"

# (description, method, path, request kwargs, status, code, text the message must contain)
CASES: list[tuple[str, str, str, dict[str, Any], int, str, str]] = [
    (
        "malformed json",
        "POST",
        LOGIN,
        {"data": b'{"email": "a@b.c", ', "headers": {"Content-Type": "application/json"}},
        400,
        "bad_request",
        "not valid JSON",
    ),
    ("json array instead of object", "POST", LOGIN, {"json": [1, 2]}, 400, "bad_request", "JSON object"),
    ("missing field", "POST", LOGIN, {"json": {"email": "a@b.c"}}, 422, "validation_failed", "'password'"),
    (
        "wrong type",
        "POST",
        LOGIN,
        {"json": {"email": 12345, "password": "x"}},
        422,
        "validation_failed",
        "'email'",
    ),
    (
        "unknown field",
        "POST",
        LOGIN,
        {"json": {"email": "a@b.c", "password": "x", "remember": True}},
        422,
        "validation_failed",
        "'remember'",
    ),
    (
        "string too long",
        "POST",
        LOGIN,
        {"json": {"email": "a" * 300, "password": "x"}},
        422,
        "validation_failed",
        "'email'",
    ),
    (
        "oversize body",
        "POST",
        LOGIN,
        {"data": b'{"email": "' + b"a" * 2_000_000 + b'"}', "headers": {"Content-Type": "application/json"}},
        413,
        "payload_too_large",
        "too large",
    ),
    ("unknown route", "GET", "/api/v1/nothing-here", {}, 404, "not_found", "/api/v1/nothing-here"),
    ("wrong method", "GET", LOGIN, {}, 405, "method_not_allowed", "GET"),
    ("not signed in", "GET", "/api/v1/auth/me", {}, 401, "unauthenticated", "Sign in"),
]


@pytest.mark.parametrize(
    ("description", "method", "path", "kwargs", "status", "code", "needle"),
    CASES,
    ids=[case[0] for case in CASES],
)
async def test_error_shape(
    client: Any,
    description: str,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
    needle: str,
) -> None:
    if isinstance(kwargs.get("data"), bytes):
        # A stream, so aiohttp does not warn about a large in-memory body.
        kwargs = {**kwargs, "data": io.BytesIO(kwargs["data"])}
    response = await client.request(method, path, **kwargs)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert needle in body["error"]["message"]


async def test_validation_details_list_every_field(client: Any) -> None:
    response = await client.post(LOGIN, json={"email": 1, "nope": 2})
    assert response.status == 422
    details = (await response.json())["error"]["details"]
    fields = {d["field"] for d in details}
    assert fields == {"email", "password", "nope"}
    assert all(d["in"] == "body" for d in details)


async def test_internal_error_has_no_stack_trace(settings: Settings, tmp_path: Path) -> None:
    # A real fault: the database file cannot be opened, so the login query fails in the driver.
    broken = settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'db-gone.sqlite3'}"}
    )
    async with TestClient(TestServer(create_app(broken))) as client:
        response = await client.post(LOGIN, json={"email": "a@b.c", "password": "x"})
        assert response.status == 500
        raw = await response.text()
    body = json.loads(raw)
    assert body == {"error": {"code": "internal", "message": "Internal server error", "details": None}}
    for leak in ("Traceback", "sqlalchemy", "db-gone", 'File "'):
        assert leak not in raw
