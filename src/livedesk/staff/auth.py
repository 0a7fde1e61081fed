"""Request-side authentication for staff: the session cookie, role checks and CSRF.

Handlers call ``require_staff(request, Role.ADMIN, …)`` first thing; the CSRF middleware
guards every cookie-authenticated write.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlsplit

from aiohttp import web

from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Forbidden, Unauthenticated
from livedesk.kit.http import Handler, endpoint, error_response
from livedesk.models import Role
from livedesk.staff import sessions
from livedesk.staff.sessions import Principal, SessionPolicy

SESSION_COOKIE = "livedesk_session"
CSRF_COOKIE = "livedesk_csrf"
CSRF_HEADER = "X-CSRF-Token"
_PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("livedesk_principal")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_policy(app: web.Application) -> SessionPolicy:
    settings = app[SETTINGS]
    return SessionPolicy(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_absolute_hours),
    )


async def current_staff(request: web.Request) -> Principal | None:
    """The signed-in staff member, or None. Looked up once per request."""
    if _PRINCIPAL in request:
        return request[_PRINCIPAL]
    token = request.cookies.get(SESSION_COOKIE)
    principal: Principal | None = None
    if token:
        async with request.app[DB].transaction() as db:
            result = await sessions.authenticate(db, token, session_policy(request.app))
        if result == "expired":
            raise Unauthenticated("Your session has ended; please sign in again", code="session_expired")
        if isinstance(result, Principal):
            principal = result
    request[_PRINCIPAL] = principal
    return principal


async def require_staff(request: web.Request, *roles: Role) -> Principal:
    """The signed-in staff member, who must hold one of ``roles`` (any role when none given)."""
    principal = await current_staff(request)
    if principal is None:
        raise Unauthenticated("Sign in as staff to do this")
    if roles and principal.role not in roles:
        raise Forbidden(f"This needs the role {' or '.join(r.value for r in roles)}")
    return principal


def set_session_cookies(response: web.StreamResponse, request: web.Request, token: str, csrf: str) -> None:
    settings = request.app[SETTINGS]
    max_age = settings.session_absolute_hours * 3600
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
        path="/",
        max_age=max_age,
    )
    # Readable by the page's script, which echoes it in the X-CSRF-Token header.
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        httponly=False,
        samesite="Strict",
        secure=settings.cookie_secure,
        path="/",
        max_age=max_age,
    )


def clear_session_cookies(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


def origin_allowed(request: web.Request, origin: str) -> bool:
    """Same origin as the request, or listed in LIVEDESK_ALLOWED_ORIGINS."""
    settings = request.app[SETTINGS]
    allowed = {o.rstrip("/") for o in settings.allowed_origins}
    if settings.public_url:
        allowed.add(settings.public_url)
    parts = urlsplit(origin)
    return origin.rstrip("/") in allowed or (
        parts.netloc == request.host and parts.scheme in {"http", "https"}
    )


def guarded(*roles: Role) -> Callable[[Callable[..., Awaitable[web.StreamResponse]]], Handler]:
    """``endpoint`` with the role check moved in front of request parsing: without it an
    anonymous or under-privileged caller would be told about body fields (422) before being
    refused (401/403). Handlers still call ``require_staff`` with the same roles (cached per
    request) to get the acting principal, so a handler copied without this decorator stays
    closed."""

    def decorate(handler: Callable[..., Awaitable[web.StreamResponse]]) -> Handler:
        parsed = endpoint(handler)

        # functools.wraps keeps the handler's signature and docstring visible to
        # aiohttp-pydantic, which writes the OpenAPI operation from them.
        @functools.wraps(parsed)
        async def check_roles_then_parse(request: web.Request) -> web.StreamResponse:
            await require_staff(request, *roles)
            return await parsed(request)

        return check_roles_then_parse

    return decorate


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Writes that ride on the session cookie must echo the session's CSRF token; a foreign
    Origin is refused outright. Requests without the cookie (shopper tokens, API keys) are not
    cookie-authenticated and pass through to their own checks."""
    if request.method in _SAFE_METHODS:
        return await handler(request)
    origin = request.headers.get("Origin")
    if origin is not None and request.cookies.get(SESSION_COOKIE) and not origin_allowed(request, origin):
        return error_response(403, "csrf_failed", "Cross-origin request refused")
    token = request.cookies.get(SESSION_COOKIE)
    if token and request.path not in _CSRF_EXEMPT:
        try:
            principal = await current_staff(request)
        except Unauthenticated as exc:
            return error_response(exc.status, exc.code, exc.message)
        sent = request.headers.get(CSRF_HEADER, "")
        if principal is not None and not hmac.compare_digest(sent.encode(), principal.csrf_token.encode()):
            return error_response(403, "csrf_failed", f"Missing or wrong {CSRF_HEADER} header")
    return await handler(request)


# Logging in replaces whatever session the cookie names, so it needs no token from it.
_CSRF_EXEMPT = frozenset({"/api/v1/auth/login"})
