"""HTTP routes: staff sign-in and sign-out, one's own password, and the admin API for staff
accounts and teams. Handlers parse, authorise and call ``service``; the rules live there."""

from __future__ import annotations

import contextlib
import uuid

from aiohttp import web
from aiohttp_pydantic.oas.typing import r200, r201, r204, r401, r403, r404, r409, r415, r422, r429, r503

from livedesk import audit
from livedesk.identity import Principal, sessions
from livedesk.identity.auth import (
    SESSION_COOKIE,
    clear_session_cookies,
    current_staff,
    guarded,
    json_from_our_pages,
    require_staff,
    set_session_cookies,
)
from livedesk.kit.context import DB, RATE_LIMITS, SETTINGS
from livedesk.kit.errors import Unauthenticated
from livedesk.kit.http import ErrorResponse, client_ip, endpoint, error_response, model_json
from livedesk.kit.logging import get_logger
from livedesk.models import Role, Staff
from livedesk.realtime.kick import disconnect_staff
from livedesk.staff import service, signin
from livedesk.staff.schemas import (
    IdFilter,
    LoginRequest,
    Me,
    PasswordChange,
    RoleFilter,
    StaffCreate,
    StaffOut,
    StaffUpdate,
    TeamCreate,
    TeamOut,
    TeamUpdate,
)
from livedesk.staff.signin import PASSWORD_CHECKS, SIGN_IN_BUDGETS, SignInBusy

log = get_logger("livedesk.staff")

ADMIN = (Role.ADMIN,)
# Supervisors see who is on which team (their board needs it) but change nothing.
READERS = (Role.ADMIN, Role.SUPERVISOR)


def _me(principal: Principal) -> Me:
    return Me(
        id=principal.staff_id,
        email=principal.email,
        display_name=principal.display_name,
        role=principal.role,
        team_id=principal.team_id,
        csrf_token=principal.csrf_token,
    )


def _staff_out(staff: Staff) -> StaffOut:
    return StaffOut.model_validate(staff)


def _team_out(summary: service.TeamSummary) -> TeamOut:
    team = summary.team
    return TeamOut(
        id=team.id,
        name=team.name,
        description=team.description,
        member_count=summary.member_count,
        created_at=team.created_at,
        updated_at=team.updated_at,
    )


# ---------------------------------------------------------------- sign-in


@json_from_our_pages
@endpoint
async def login(
    request: web.Request, body: LoginRequest
) -> (
    r200[Me]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r415[ErrorResponse]
    | r429[ErrorResponse]
    | r503[ErrorResponse]
):
    """Sign in with e-mail and password (a JSON body; a foreign Origin is refused); sets the
    session cookie and returns the CSRF token."""
    app = request.app
    email = body.email.strip().lower()
    address = client_ip(request)
    await signin.spend_budgets(app[RATE_LIMITS], app[SIGN_IN_BUDGETS], email, address)
    # Read, check, then write: the password check holds no transaction, so a flood of
    # sign-ins never holds SQLite's one write lock (nor a pooled connection) through argon2.
    async with app[DB].read() as db:
        account = await sessions.find_account(db, email)
    try:
        checked = await app[PASSWORD_CHECKS].check(account.password_hash if account else None, body.password)
    except SignInBusy as busy:
        refused = error_response(busy.status, busy.code, busy.message, busy.details)
        refused.headers["Retry-After"] = str(busy.retry_after)
        return refused
    if account is None or not account.active or not checked.valid:
        reason = "unknown" if account is None else "disabled" if not account.active else "password"
        log.info("sign-in refused", reason=reason, ip=address)
        if account is not None:
            # A real account's failures are audited (someone may be guessing her password);
            # unknown addresses are only logged, so a flood of them writes nothing. The rows
            # per account are bounded by its sign-in budget; queued, so the 401 never waits
            # for the database's write lock.
            app[audit.DEFERRED_AUDIT].record(
                actor=None,
                action="staff.login_failed",
                target_type="staff",
                target_id=account.staff_id,
                details={"ip": address, "reason": reason},
            )
        raise Unauthenticated("Wrong e-mail or password, or the account is disabled", code="login_failed")
    async with app[DB].transaction() as db:
        new = await sessions.open_session(
            db,
            account=account,
            rehashed=checked.rehashed,
            previous_token=request.cookies.get(SESSION_COOKIE),
            client_ip=address,
            user_agent=request.headers.get("User-Agent", ""),
        )
    await signin.signed_in(app[RATE_LIMITS], app[SIGN_IN_BUDGETS], email)
    response = model_json(_me(new.principal))
    set_session_cookies(response, request, new.token, new.principal.csrf_token)
    return response


@endpoint
async def logout(request: web.Request) -> r200[dict[str, bool]] | r403[ErrorResponse]:
    """End this session."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        # Ending a live session is a cookie-authenticated write like any other: reading it
        # checks the Origin and the CSRF token. An ended one needs no proof to be cleared.
        with contextlib.suppress(Unauthenticated):
            await current_staff(request)
        async with request.app[DB].transaction() as db:
            await sessions.logout(db, token)
    response = web.json_response({"ok": True})
    clear_session_cookies(response)
    return response


@endpoint
async def me(request: web.Request) -> r200[Me] | r401[ErrorResponse]:
    """Who is signed in."""
    return model_json(_me(await require_staff(request)))


@guarded()
async def change_my_password(
    request: web.Request, body: PasswordChange
) -> r200[dict[str, bool]] | r401[ErrorResponse] | r422[ErrorResponse] | r429[ErrorResponse]:
    """Change your own password (the current one is required); your other sessions end."""
    principal = await require_staff(request)
    # A stolen session must not become a way to guess the current password.
    await request.app[RATE_LIMITS].hit(
        request.app[SETTINGS].login_rate_limit,
        "password_change",
        str(principal.staff_id),
        message="Too many password change attempts; wait a minute",
    )
    async with request.app[DB].transaction() as db:
        await service.change_own_password(
            db,
            staff_id=principal.staff_id,
            keep_session_id=principal.session_id,
            current_password=body.current_password,
            new_password=body.new_password,
        )
    return web.json_response({"ok": True})


# ---------------------------------------------------------------- staff accounts


@guarded(*READERS)
async def list_staff(
    request: web.Request,
    role: RoleFilter = None,
    team_id: IdFilter = None,
    active: bool | None = None,
) -> r200[list[StaffOut]] | r401[ErrorResponse] | r403[ErrorResponse]:
    """List staff accounts by display name, optionally filtered by role, team and active.

    Tags: staff
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as db:
        found = await service.list_staff(db, role=role, team_id=team_id, active=active)
        return model_json([_staff_out(staff) for staff in found])


@guarded(*ADMIN)
async def create_staff(
    request: web.Request, body: StaffCreate
) -> r201[StaffOut] | r401[ErrorResponse] | r403[ErrorResponse] | r409[ErrorResponse] | r422[ErrorResponse]:
    """Create a staff account (admin only).

    Tags: staff
    """
    actor = await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        staff = await service.create_staff(db, body, actor_id=actor.staff_id)
        out = _staff_out(staff)
    response = model_json(out, status=201)
    response.headers["Location"] = f"/api/v1/staff/{out.id}"
    return response


@guarded(*READERS)
async def get_staff(
    request: web.Request, staff_id: uuid.UUID, /
) -> r200[StaffOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """One staff account.

    Tags: staff
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as db:
        return model_json(_staff_out(await service.get_staff(db, staff_id)))


@guarded(*ADMIN)
async def update_staff(
    request: web.Request, staff_id: uuid.UUID, /, body: StaffUpdate
) -> (
    r200[StaffOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Change a staff account (admin only); a new password or role, or active=false, ends its sessions.

    Tags: staff
    """
    actor = await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        staff = await service.update_staff(db, staff_id, body, actor_id=actor.staff_id)
        out = _staff_out(staff)
    if body.password is not None or body.role is not None or body.active is False:
        await disconnect_staff(request.app, staff_id)
    return model_json(out)


@guarded(*ADMIN)
async def disable_staff(
    request: web.Request, staff_id: uuid.UUID, /
) -> r200[StaffOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r409[ErrorResponse]:
    """Disable a staff account (admin only): it cannot sign in and its open sessions end now.

    Tags: staff
    """
    actor = await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        staff = await service.disable_staff(db, staff_id, actor_id=actor.staff_id)
        out = _staff_out(staff)
    await disconnect_staff(request.app, staff_id)
    return model_json(out)


# ---------------------------------------------------------------- teams


@guarded(*READERS)
async def list_teams(request: web.Request) -> r200[list[TeamOut]] | r401[ErrorResponse] | r403[ErrorResponse]:
    """List teams by name, with their member counts.

    Tags: teams
    """
    await require_staff(request, *READERS)
    async with request.app[DB].read() as db:
        return model_json([_team_out(summary) for summary in await service.list_teams(db)])


@guarded(*ADMIN)
async def create_team(
    request: web.Request, body: TeamCreate
) -> r201[TeamOut] | r401[ErrorResponse] | r403[ErrorResponse] | r409[ErrorResponse] | r422[ErrorResponse]:
    """Create a team (admin only); names are unique regardless of case.

    Tags: teams
    """
    actor = await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        out = _team_out(await service.create_team(db, body, actor_id=actor.staff_id))
    return model_json(out, status=201)


@guarded(*ADMIN)
async def update_team(
    request: web.Request, team_id: uuid.UUID, /, body: TeamUpdate
) -> (
    r200[TeamOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r404[ErrorResponse]
    | r409[ErrorResponse]
    | r422[ErrorResponse]
):
    """Rename or describe a team (admin only).

    Tags: teams
    """
    actor = await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        out = _team_out(await service.update_team(db, team_id, body, actor_id=actor.staff_id))
    return model_json(out)


@guarded(*ADMIN)
async def delete_team(
    request: web.Request, team_id: uuid.UUID, /
) -> r204 | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse] | r409[ErrorResponse]:
    """Delete a team (admin only); refused with 409 while it still has members.

    Tags: teams
    """
    actor = await require_staff(request, *ADMIN)
    async with request.app[DB].transaction() as db:
        await service.delete_team(db, team_id, actor_id=actor.staff_id)
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_get("/api/v1/auth/me", me)
    app.router.add_patch("/api/v1/auth/me/password", change_my_password)

    app.router.add_get("/api/v1/staff", list_staff)
    app.router.add_post("/api/v1/staff", create_staff)
    app.router.add_get("/api/v1/staff/{staff_id}", get_staff)
    app.router.add_patch("/api/v1/staff/{staff_id}", update_staff)
    app.router.add_post("/api/v1/staff/{staff_id}/disable", disable_staff)

    app.router.add_get("/api/v1/teams", list_teams)
    app.router.add_post("/api/v1/teams", create_team)
    app.router.add_patch("/api/v1/teams/{team_id}", update_team)
    app.router.add_delete("/api/v1/teams/{team_id}", delete_team)
