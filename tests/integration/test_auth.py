"""Staff sign-in over real HTTP: cookies, error shape, rate limit, session rotation and
expiry, logout, CSRF and one's own password change."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
from sqlalchemy import func, select, update

from livedesk.identity import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from livedesk.kit.clock import utcnow
from livedesk.kit.db import Database
from livedesk.models import AuditEntry, Role, StaffSession
from livedesk.settings import Settings
from tests.conftest import TEST_PASSWORD, StaffAccount, login

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
MY_PASSWORD = "/api/v1/auth/me/password"
TEAMS = "/api/v1/teams"


def cookie(client: Any, name: str) -> str | None:
    jar = client.session.cookie_jar if hasattr(client, "session") else client.cookie_jar
    return next((c.value for c in jar if c.key == name), None)


def use_token(client: Any, token: str) -> None:
    """Make the client present exactly this session token (as a replayed cookie would)."""
    jar = client.session.cookie_jar
    jar.clear()
    jar.update_cookies({SESSION_COOKIE: token}, client.make_url("/"))


@asynccontextmanager
async def browser(client: Any) -> AsyncIterator[Any]:
    """A second, independent browser (own cookie jar) talking to the same server. Typed Any:
    conftest's ``login`` is annotated for the TestClient but works with any aiohttp session."""
    async with aiohttp.ClientSession(
        base_url=client.make_url("/"), cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        yield session


async def session_rows(db: Database, account: StaffAccount) -> list[StaffSession]:
    async with db.read() as session:
        rows = await session.scalars(select(StaffSession).where(StaffSession.staff_id == account.id))
        return list(rows)


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def test_login_sets_httponly_samesite_cookie_and_returns_csrf(
    client: Any, make_staff: Any, db: Database
) -> None:
    account = await make_staff(Role.ADVISOR)
    response = await client.post(LOGIN, json={"email": account.email.upper(), "password": TEST_PASSWORD})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["id"] == str(account.id)
    assert body["email"] == account.email
    assert body["role"] == "advisor"
    assert len(body["csrf_token"]) >= 32
    assert "password_hash" not in body

    set_cookies = response.headers.getall("Set-Cookie")
    session_header = next(h for h in set_cookies if h.startswith(f"{SESSION_COOKIE}="))
    assert "httponly" in session_header.lower()
    assert "samesite=lax" in session_header.lower()
    assert "path=/" in session_header.lower()
    # The page script reads the CSRF cookie, so that one must not be HttpOnly.
    csrf_header = next(h for h in set_cookies if h.startswith(f"{CSRF_COOKIE}="))
    assert "httponly" not in csrf_header.lower()
    assert cookie(client, CSRF_COOKIE) == body["csrf_token"]

    me = await client.get(ME)
    assert me.status == 200
    assert (await me.json())["id"] == str(account.id)

    token = cookie(client, SESSION_COOKIE)
    assert token
    rows = await session_rows(db, account)
    assert [row.id for row in rows] == [sha256(token)]
    assert rows[0].csrf_token == body["csrf_token"]


async def test_wrong_password_and_unknown_email_get_the_same_401(client: Any, make_staff: Any) -> None:
    account = await make_staff(Role.ADVISOR)
    wrong = await client.post(LOGIN, json={"email": account.email, "password": "not the password"})
    unknown = await client.post(LOGIN, json={"email": "nobody@example.test", "password": "not the password"})
    assert wrong.status == unknown.status == 401
    wrong_body, unknown_body = await wrong.json(), await unknown.json()
    assert set(wrong_body) == {"error"}
    assert set(wrong_body["error"]) == {"code", "message", "details"}
    assert wrong_body["error"]["code"] == "login_failed"
    # Nothing in the answer tells an attacker which addresses have accounts.
    assert wrong_body == unknown_body
    assert cookie(client, SESSION_COOKIE) is None
    assert (await client.get(ME)).status == 401


async def test_disabled_account_cannot_sign_in(client: Any, make_staff: Any, db: Database) -> None:
    account = await make_staff(Role.ADMIN, active=False)
    response = await client.post(LOGIN, json={"email": account.email, "password": TEST_PASSWORD})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "login_failed"
    assert await session_rows(db, account) == []


async def test_login_rate_limit_refuses_even_the_right_password(client: Any, make_staff: Any) -> None:
    account = await make_staff(Role.ADVISOR)
    bystander = await make_staff(Role.ADVISOR)
    for _ in range(5):
        response = await client.post(LOGIN, json={"email": account.email, "password": "wrong password"})
        assert response.status == 401
    sixth = await client.post(LOGIN, json={"email": account.email, "password": "wrong password"})
    assert sixth.status == 429
    retry_after = int(sixth.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    body = await sixth.json()
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["details"]["retry_after"] == retry_after

    right = await client.post(LOGIN, json={"email": account.email, "password": TEST_PASSWORD})
    assert right.status == 429
    assert cookie(client, SESSION_COOKIE) is None
    # The budget is per account (and address): a colleague can still sign in.
    await login(client, bystander)


async def test_login_rotates_the_session_id(client: Any, make_staff: Any, db: Database) -> None:
    account = await make_staff(Role.ADVISOR)
    await login(client, account)
    first = cookie(client, SESSION_COOKIE)
    assert first
    # Signing in again while presenting the old cookie must not keep (or reuse) it.
    await login(client, account)
    second = cookie(client, SESSION_COOKIE)
    assert second
    assert second != first

    rows = await session_rows(db, account)
    # Only the SHA-256 of the live token is stored; the old session is gone.
    assert [row.id for row in rows] == [sha256(second)]
    assert all(token not in {row.id for row in rows} for token in (first, second))

    use_token(client, first)
    assert (await client.get(ME)).status == 401
    use_token(client, second)
    assert (await client.get(ME)).status == 200


async def _age_session(db: Database, account: StaffAccount, **ages: timedelta) -> None:
    now = utcnow()
    values = {column: now - age for column, age in ages.items()}
    async with db.transaction() as session:
        await session.execute(
            update(StaffSession).where(StaffSession.staff_id == account.id).values(**values)
        )


async def test_idle_session_expires(client: Any, make_staff: Any, db: Database, settings: Settings) -> None:
    account = await make_staff(Role.ADVISOR)
    await login(client, account)
    idle = timedelta(minutes=settings.session_idle_minutes)

    await _age_session(db, account, last_seen_at=idle - timedelta(minutes=1))
    assert (await client.get(ME)).status == 200
    # That request counted as activity.
    (row,) = await session_rows(db, account)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)

    await _age_session(db, account, last_seen_at=idle + timedelta(minutes=1))
    response = await client.get(ME)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "session_expired"
    assert await session_rows(db, account) == []


async def test_absolute_session_lifetime(
    client: Any, make_staff: Any, db: Database, settings: Settings
) -> None:
    account = await make_staff(Role.ADVISOR)
    await login(client, account)
    lifetime = timedelta(hours=settings.session_absolute_hours)

    await _age_session(db, account, created_at=lifetime - timedelta(minutes=1))
    assert (await client.get(ME)).status == 200

    # Busy right up to the end does not help: the session was opened too long ago.
    await _age_session(db, account, created_at=lifetime + timedelta(minutes=1), last_seen_at=timedelta(0))
    response = await client.get(ME)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "session_expired"
    assert await session_rows(db, account) == []


async def test_logout_ends_the_session(client: Any, make_staff: Any, db: Database) -> None:
    account = await make_staff(Role.ADVISOR)
    headers = await login(client, account)
    token = cookie(client, SESSION_COOKIE)
    assert token

    response = await client.post(LOGOUT, headers=headers)
    assert response.status == 200
    assert cookie(client, SESSION_COOKIE) is None
    assert await session_rows(db, account) == []
    # Replaying the cookie (a copy kept elsewhere) gets nowhere.
    use_token(client, token)
    assert (await client.get(ME)).status == 401


async def test_csrf_guards_cookie_authenticated_writes(client: Any, make_staff: Any) -> None:
    admin = await make_staff(Role.ADMIN)
    headers = await login(client, admin)
    token = headers[CSRF_HEADER]

    refused = [
        await client.post(TEAMS, json={"name": "No header"}),
        await client.post(TEAMS, json={"name": "Wrong header"}, headers={CSRF_HEADER: "x" + token[1:]}),
        await client.post(
            TEAMS,
            json={"name": "Foreign origin"},
            headers={CSRF_HEADER: token, "Origin": "https://evil.example"},
        ),
    ]
    for response in refused:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "csrf_failed"
    assert await (await client.get(TEAMS)).json() == []

    created = await client.post(
        TEAMS, json={"name": "Kimono"}, headers={CSRF_HEADER: token, "Origin": str(client.make_url("/"))[:-1]}
    )
    assert created.status == 201, await created.text()
    team_id = (await created.json())["id"]

    patch_path = f"{TEAMS}/{team_id}"
    assert (await client.patch(patch_path, json={"description": "x"})).status == 403
    assert (
        await client.patch(patch_path, json={"description": "x"}, headers={CSRF_HEADER: "nope"})
    ).status == 403
    ok = await client.patch(patch_path, json={"description": "Furisode and yukata"}, headers=headers)
    assert ok.status == 200
    assert (await ok.json())["description"] == "Furisode and yukata"


async def test_change_own_password_ends_other_sessions(client: Any, make_staff: Any, db: Database) -> None:
    account = await make_staff(Role.ADVISOR)
    headers = await login(client, account)
    async with browser(client) as other:
        await login(other, account)
        assert len(await session_rows(db, account)) == 2

        wrong = await client.patch(
            MY_PASSWORD,
            json={"current_password": "not it at all", "new_password": "a brand new secret"},
            headers=headers,
        )
        assert wrong.status == 422
        assert (await wrong.json())["error"]["details"][0]["field"] == "current_password"

        short = await client.patch(
            MY_PASSWORD, json={"current_password": TEST_PASSWORD, "new_password": "short"}, headers=headers
        )
        assert short.status == 422
        assert (await short.json())["error"]["details"][0]["field"] == "new_password"
        assert len(await session_rows(db, account)) == 2

        changed = await client.patch(
            MY_PASSWORD,
            json={"current_password": TEST_PASSWORD, "new_password": "a brand new secret"},
            headers=headers,
        )
        assert changed.status == 200, await changed.text()
        assert (await other.get(ME)).status == 401
        assert (await client.get(ME)).status == 200
        assert len(await session_rows(db, account)) == 1

        old = await other.post(LOGIN, json={"email": account.email, "password": TEST_PASSWORD})
        assert old.status == 401
        new = await other.post(LOGIN, json={"email": account.email, "password": "a brand new secret"})
        assert new.status == 200

    async with db.read() as session:
        actions = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "staff.password_changed", AuditEntry.actor_staff_id == account.id)
        )
    assert actions == 1


async def test_anonymous_cannot_change_a_password(client: Any) -> None:
    response = await client.patch(MY_PASSWORD, json={"current_password": "x", "new_password": "y"})
    assert response.status == 401
