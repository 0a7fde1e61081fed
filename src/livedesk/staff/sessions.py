"""Staff login sessions: created at login with a fresh id, ended by logout, by disabling
the account, after the idle timeout, or at the absolute timeout."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Unauthenticated
from livedesk.models import AuditEntry, Role, Staff, StaffSession
from livedesk.staff.passwords import hash_password, needs_rehash, verify_password

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


async def login(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    previous_token: str | None,
    client_ip: str,
    user_agent: str,
) -> NewSession:
    """Check the password and open a new session. Any session the browser already had is
    ended, so a session id planted before login is useless after it (fixation)."""
    staff = await session.scalar(select(Staff).where(Staff.email == email.strip().lower()))
    # argon2 takes tens of milliseconds on purpose: off the event loop, so one sign-in does
    # not stall every socket in the process.
    valid = await asyncio.to_thread(verify_password, staff.password_hash if staff else None, password)
    if staff is None or not valid or not staff.active:
        raise Unauthenticated("Wrong e-mail or password, or the account is disabled", code="login_failed")
    if needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
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
    session.add(
        AuditEntry(
            actor_staff_id=staff.id,
            action="staff.login",
            target_type="staff",
            target_id=str(staff.id),
            details={"ip": client_ip},
        )
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
    if not staff.active or now - row.last_seen_at > policy.idle or now - row.created_at > policy.absolute:
        await session.delete(row)
        return "expired"
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
    return _principal(staff, row)


async def logout(session: AsyncSession, token: str) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.id == _digest(token)))


async def end_all_sessions(session: AsyncSession, staff_id: uuid.UUID) -> None:
    """Used when an account is disabled or its password or role changes."""
    await session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))
