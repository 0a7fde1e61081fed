"""Request-side authentication for staff: the session cookie, role checks and CSRF.

Handlers call ``require_staff(request, Role.ADMIN, …)`` first thing. CSRF has one rule: a
request is cookie-authenticated only where its route reads the staff session, which is
``current_staff`` (and so ``require_staff``); there, a write must come from an allowed Origin
(when it names one) and echo the session's X-CSRF-Token. Routes that never read the session
(the shopper's visitor, booking, widget, intake and satisfaction routes; the Engine.IO
endpoint, guarded by its Origin check and the session read at connect) are not touched by a
staff cookie the browser happens to hold.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlsplit

from aiohttp import web

import livedesk.identity.sessions as sessions  # the module, not the package face (which imports this one)
from livedesk.identity.sessions import Principal, SessionPolicy
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import Forbidden, Unauthenticated, UnsupportedMediaType
from livedesk.kit.http import Handler, endpoint
from livedesk.models import Role

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
        writing = request.method not in _SAFE_METHODS
        if writing:
            # Before the database: a foreign page's request costs no session lookup.
            _check_origin(request)
        async with request.app[DB].transaction() as db:
            result = await sessions.authenticate(db, token, session_policy(request.app))
        if result == "expired":
            raise Unauthenticated("Your session has ended; please sign in again", code="session_expired")
        if isinstance(result, Principal):
            if writing:
                _check_token(request, result)
            principal = result
    request[_PRINCIPAL] = principal
    return principal


def _check_origin(request: web.Request) -> None:
    """Browsers name the Origin of every cross-origin write (``null`` for sandboxed and
    privacy-stripped ones); a request naming none comes from a tool, not a page."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(request, origin):
        raise Forbidden("Cross-origin request refused", code="csrf_failed")


def _check_token(request: web.Request, principal: Principal) -> None:
    # Only the session's own pages can read the token (the CSRF cookie, or /auth/me).
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), principal.csrf_token.encode()):
        raise Forbidden(f"Missing or wrong {CSRF_HEADER} header", code="csrf_failed")


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


def json_from_our_pages(handler: Handler) -> Handler:
    """For a write that opens a session rather than reading one (sign-in): without the
    session's token to check, it must still not be driven by another site's page (login CSRF
    would sign the victim's browser into the attacker's account). A foreign Origin is refused,
    and only ``application/json`` is read: a page can post text/plain or a form to any site
    without asking, but JSON from another origin needs a CORS preflight we never grant."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        _check_origin(request)
        if request.content_type != "application/json":
            raise UnsupportedMediaType(
                "Send the body as application/json",
                details={"expected": "application/json", "received": request.content_type},
            )
        return await handler(request)

    return checked
