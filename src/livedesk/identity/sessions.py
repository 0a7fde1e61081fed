"""Staff login sessions: created at login with a fresh id, ended by logout, by disabling
the account, after the idle timeout, or at the absolute timeout."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk import audit
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Unauthenticated
from livedesk.models import Role, Staff, StaffSession

# Refreshing last_seen_at on every request would make every read a write.
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class Principal:
    """The signed-in staff member behind a request."""

    staff_id: uuid.UUID
    role: Role
    email: str
    display_name: str
    session_id: str
    csrf_token: str
    team_id: uuid.UUID | None


@dataclass(frozen=True)
class NewSession:
    token: str
    principal: Principal


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _ended(
    active: bool, last_seen: datetime, created: datetime, now: datetime, policy: SessionPolicy
) -> bool:
    """A session ends with its account, after the idle timeout, or at the absolute one."""
    return not active or now - last_seen > policy.idle or now - created > policy.absolute


def _due_touch(last_seen: datetime, now: datetime) -> bool:
    return now - last_seen > _TOUCH_EVERY


def _principal(staff: Staff, row: StaffSession) -> Principal:
    return Principal(
        staff_id=staff.id,
        role=staff.role,
        email=staff.email,
        display_name=staff.display_name,
        session_id=row.id,
        csrf_token=row.csrf_token,
        team_id=staff.team_id,
    )


@dataclass(frozen=True)
class LoginAccount:
    """The account an e-mail names, as read before its password is checked."""

    staff_id: uuid.UUID
    password_hash: str
    active: bool


async def find_account(session: AsyncSession, email: str) -> LoginAccount | None:
    """The account to check a sign-in's password against. A read: the check (argon2, tens to
    hundreds of milliseconds) must run with no write transaction open, or on SQLite every
    write of the installation waits behind it."""
    found = (
        await session.execute(
            select(Staff.id, Staff.password_hash, Staff.active).where(Staff.email == email.strip().lower())
        )
    ).one_or_none()
    return None if found is None else LoginAccount(*found)


async def open_session(
    session: AsyncSession,
    *,
    account: LoginAccount,
    rehashed: str | None,
    previous_token: str | None,
    client_ip: str,
    user_agent: str,
) -> NewSession:
    """Open a new session for ``account``, whose password was checked. Any session the browser
    already had is ended, so a session id planted before login is useless after it (fixation)."""
    staff = await session.get(Staff, account.staff_id, with_for_update=True)
    # The check ran on what find_account read: an account disabled, or a password changed,
    # since then (an admin's reset ending a leaked password) must not let this sign-in through.
    if staff is None or not staff.active or staff.password_hash != account.password_hash:
        raise Unauthenticated("Wrong e-mail or password, or the account is disabled", code="login_failed")
    if rehashed is not None:
        staff.password_hash = rehashed
    if previous_token:
        await session.execute(delete(StaffSession).where(StaffSession.id == _digest(previous_token)))
    token = secrets.token_urlsafe(32)
    row = StaffSession(
        id=_digest(token),
        staff_id=staff.id,
        csrf_token=secrets.token_urlsafe(32),
        user_agent=user_agent[:300],
        client_ip=client_ip[:64],
    )
    session.add(row)
    audit.record(
        session,
        actor=staff.id,
        action="staff.login",
        target_type="staff",
        target_id=staff.id,
        details={"ip": client_ip},
    )
    await session.flush()
    return NewSession(token=token, principal=_principal(staff, row))


async def authenticate(
    session: AsyncSession, token: str, policy: SessionPolicy
) -> Principal | Literal["missing", "expired"]:
    """Resolve a session cookie to its principal. An expired session is deleted and reported
    rather than raised, so the caller's transaction commits the deletion."""
    found = (
        await session.execute(
            select(StaffSession, Staff)
            .join(Staff, Staff.id == StaffSession.staff_id)
            .where(StaffSession.id == _digest(token))
        )
    ).one_or_none()
    if found is None:
        return "missing"
    row, staff = found  # a Row unpacks like a tuple (Row.tuple() is deprecated)
    now = utcnow()
    if _ended(staff.active, row.last_seen_at, row.created_at, now, policy):
        await session.delete(row)
        return "expired"
    if _due_touch(row.last_seen_at, now):
        row.last_seen_at = now
    return _principal(staff, row)


@dataclass
class OpenSessions:
    """What one check of many open sockets' sessions found (``check_open``)."""

    valid: dict[str, Principal] = field(default_factory=dict)  # by token
    ended: list[str] = field(default_factory=list)  # session ids to delete (expired)
    touch: list[str] = field(default_factory=list)  # session ids whose last-seen time to refresh


async def check_open(
    session: AsyncSession, tokens: Sequence[str], used: Collection[str], policy: SessionPolicy
) -> OpenSessions:
    """The sessions behind open staff sockets, in one read: the principal of each that still
    holds (a token not in ``valid`` has ended: logged out, expired or disabled). Sessions in
    ``used`` (a socket of theirs sent an event since the last check) are due a last-seen
    refresh as a request would give them; ``write_checked`` writes that and the deletions."""
    by_id = {_digest(token): token for token in tokens}
    # Columns, not ORM objects: this runs for every staff socket of a process, and building
    # two entities per row cost the event loop ~0.1 ms a session.
    rows = await session.execute(
        select(
            StaffSession.id,
            StaffSession.last_seen_at,
            StaffSession.created_at,
            StaffSession.csrf_token,
            Staff.id,
            Staff.role,
            Staff.email,
            Staff.display_name,
            Staff.team_id,
            Staff.active,
        )
        .join(Staff, Staff.id == StaffSession.staff_id)
        .where(StaffSession.id.in_(list(by_id)))
    )
    now, found = utcnow(), OpenSessions()
    for session_id, last_seen, created, csrf, staff_id, role, email, name, team_id, active in rows:
        if _ended(active, last_seen, created, now, policy):
            found.ended.append(session_id)
            continue
        token = by_id[session_id]
        found.valid[token] = Principal(
            staff_id=staff_id,
            role=role,
            email=email,
            display_name=name,
            session_id=session_id,
            csrf_token=csrf,
            team_id=team_id,
        )
        if token in used and _due_touch(last_seen, now):
            found.touch.append(session_id)
    return found


async def write_checked(session: AsyncSession, found: OpenSessions) -> None:
    if found.ended:
        await session.execute(delete(StaffSession).where(StaffSession.id.in_(found.ended)))
    if found.touch:
        await session.execute(
            update(StaffSession).where(StaffSession.id.in_(found.touch)).values(last_seen_at=utcnow())
        )


async def logout(session: AsyncSession, token: str) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.id == _digest(token)))


async def end_all_sessions(session: AsyncSession, staff_id: uuid.UUID) -> None:
    """Used when an account is disabled or its password or role changes."""
    await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))
