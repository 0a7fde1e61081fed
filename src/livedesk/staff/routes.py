"""HTTP routes: staff sign-in and sign-out."""

from __future__ import annotations

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r401, r429

from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.http import ErrorResponse, endpoint, model_json
from livedesk.staff import sessions
from livedesk.staff.auth import SESSION_COOKIE, clear_session_cookies, require_staff, set_session_cookies
from livedesk.staff.schemas import LoginRequest, Me
from livedesk.staff.sessions import Principal


def _me(principal: Principal) -> Me:
    return Me(
        id=principal.staff_id,
        email=principal.email,
        display_name=principal.display_name,
        role=principal.role,
        team_id=principal.team_id,
        csrf_token=principal.csrf_token,
    )


def client_ip(request: web.Request) -> str:
    return request.remote or ""


@endpoint
async def login(
    request: web.Request, body: LoginRequest
) -> r200[Me] | r401[ErrorResponse] | r429[ErrorResponse]:
    """Sign in with e-mail and password; sets the session cookie and returns the CSRF token."""
    settings = request.app[SETTINGS]
    email = body.email.strip().lower()
    # Per account and client address, so one attacker cannot lock a colleague out from elsewhere.
    await request.app[RATE_LIMITS].hit(
        settings.login_rate_limit,
        "login",
        email,
        client_ip(request),
        message="Too many sign-in attempts; wait a minute",
    )
    async with request.app[DB].transaction() as db:
        new = await sessions.login(
            db,
            email=email,
            password=body.password,
            previous_token=request.cookies.get(SESSION_COOKIE),
            client_ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
    response = model_json(_me(new.principal))
    set_session_cookies(response, request, new.token, new.principal.csrf_token)
    return response


@endpoint
async def logout(request: web.Request) -> r200[dict[str, bool]]:
    """End this session."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[DB].transaction() as db:
            await sessions.logout(db, token)
    response = web.json_response({"ok": True})
    clear_session_cookies(response)
    return response


@endpoint
async def me(request: web.Request) -> r200[Me] | r401[ErrorResponse]:
    """Who is signed in."""
    return model_json(_me(await require_staff(request)))


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_get("/api/v1/auth/me", me)
