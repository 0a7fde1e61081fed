"""Staff accounts and teams: the rules admins work under.

Every function takes the caller's ``AsyncSession`` and never commits: the HTTP handler (or
the CLI) owns the transaction, so a refused change leaves nothing behind. Each change writes
an audit entry in the same transaction.

Rules kept here:

* e-mail addresses are unique (stored lower-cased);
* changing a password or a role, or disabling an account, ends all of its login sessions at
  once, so a removed privilege cannot live on in an open browser;
* an admin cannot disable or demote their own account, and no change may leave the
  installation without an active admin;
* team names are unique (case-insensitively), and a team that still has members cannot be
  deleted — the admin moves them first, so nobody silently drops out of team routing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk import audit
from livedesk.identity import end_all_sessions
from livedesk.kit.errors import Conflict, NotFound, ValidationFailed
from livedesk.models import Role, Staff, StaffSession, Team
from livedesk.staff.passwords import hash_password, verify_password
from livedesk.staff.schemas import StaffCreate, StaffUpdate, TeamCreate, TeamUpdate

# Audit actions written by this module (``noun.verb``).
STAFF_CREATED = "staff.created"
STAFF_UPDATED = "staff.updated"
STAFF_DISABLED = "staff.disabled"
STAFF_ENABLED = "staff.enabled"
STAFF_PASSWORD_CHANGED = "staff.password_changed"  # noqa: S105 — an action name, not a password
TEAM_CREATED = "team.created"
TEAM_UPDATED = "team.updated"
TEAM_DELETED = "team.deleted"


@dataclass(frozen=True)
class TeamSummary:
    team: Team
    member_count: int


# ---------------------------------------------------------------- helpers


def _audit(
    session: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    action: str,
    target: Staff | Team,
    details: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        actor=actor_id,
        action=action,
        target_type="staff" if isinstance(target, Staff) else "team",
        target_id=target.id,
        details=details,
    )


def _field_error(field: str, message: str, kind: str) -> ValidationFailed:
    """A 422 shaped like the request validator's, naming the body field at fault."""
    return ValidationFailed(
        f"body field '{field}': {message}",
        details=[{"in": "body", "field": field, "message": message, "type": kind}],
    )


async def _flush(session: AsyncSession, what: str) -> None:
    """Flush, turning a unique-constraint race (two admins creating the same e-mail at the
    same moment on PostgreSQL) into a clean 409 instead of a 500. The pre-checks give the
    precise message; this is only the backstop."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"{what} conflicts with a change made at the same moment; try again") from None


async def _hash(password: str) -> str:
    # argon2 takes tens of milliseconds of CPU; off the event loop it does not stall every
    # other request and socket served by this process.
    return await asyncio.to_thread(hash_password, password)


async def _ensure_email_free(
    session: AsyncSession, email: str, *, other_than: uuid.UUID | None = None
) -> None:
    query = select(Staff.id).where(Staff.email == email)
    if other_than is not None:
        query = query.where(Staff.id != other_than)
    if await session.scalar(query) is not None:
        raise Conflict(
            f"A staff account with the e-mail {email} already exists",
            code="email_taken",
            details={"field": "email"},
        )


async def _ensure_team(session: AsyncSession, team_id: uuid.UUID) -> None:
    if await session.get(Team, team_id) is None:
        raise _field_error("team_id", f"no team with id {team_id}", "unknown_team")


async def _staff_for_update(session: AsyncSession, staff_id: uuid.UUID) -> Staff:
    staff = await session.scalar(select(Staff).where(Staff.id == staff_id).with_for_update())
    if staff is None:
        raise NotFound(f"No staff account with id {staff_id}")
    return staff


async def _lock_active_admins(session: AsyncSession) -> list[uuid.UUID]:
    """Lock every active admin row, always in id order so that two concurrent role changes
    cannot deadlock. Once locked, the count cannot change under us: two admins disabling
    each other at the same moment cannot both succeed (PostgreSQL re-checks the WHERE after
    waiting; SQLite serialises writers anyway)."""
    rows = await session.scalars(
        select(Staff.id)
        .where(Staff.role == Role.ADMIN, Staff.active.is_(True))
        .order_by(Staff.id)
        .with_for_update()
    )
    return list(rows)


# ---------------------------------------------------------------- staff accounts


async def get_staff(session: AsyncSession, staff_id: uuid.UUID) -> Staff:
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFound(f"No staff account with id {staff_id}")
    return staff


async def list_staff(
    session: AsyncSession,
    *,
    role: Role | None = None,
    team_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> Sequence[Staff]:
    """Staff accounts, ordered by display name (then e-mail, so equal names stay stable)."""
    query = select(Staff)
    if role is not None:
        query = query.where(Staff.role == role)
    if team_id is not None:
        query = query.where(Staff.team_id == team_id)
    if active is not None:
        query = query.where(Staff.active.is_(active))
    query = query.order_by(func.lower(Staff.display_name), Staff.email)
    return (await session.scalars(query)).all()


async def create_staff(session: AsyncSession, data: StaffCreate, *, actor_id: uuid.UUID | None) -> Staff:
    """Create an account. ``actor_id`` is the admin doing it, or None from the command line."""
    await _ensure_email_free(session, data.email)
    if data.team_id is not None:
        await _ensure_team(session, data.team_id)
    staff = Staff(
        email=data.email,
        password_hash=await _hash(data.password),
        role=data.role,
        active=True,
        team_id=data.team_id,
        display_name=data.display_name,
        bio=data.bio,
        photo_url=data.photo_url,
        skills=data.skills,
        languages=data.languages,
        timezone=data.timezone,
        nominable=data.nominable,
    )
    session.add(staff)
    await _flush(session, f"The account {data.email}")
    _audit(
        session,
        actor_id=actor_id,
        action=STAFF_CREATED,
        target=staff,
        details={"email": staff.email, "role": staff.role.value, "via": "cli" if actor_id is None else "api"},
    )
    return staff


async def update_staff(
    session: AsyncSession, staff_id: uuid.UUID, data: StaffUpdate, *, actor_id: uuid.UUID | None
) -> Staff:
    """Apply the fields present in ``data``. See the module docstring for what a change of
    password, role or ``active`` implies."""
    changes = data.changes()
    admins = await _lock_active_admins(session) if {"role", "active"} & changes.keys() else []
    staff = await _staff_for_update(session, staff_id)

    if "email" in changes and changes["email"] != staff.email:
        await _ensure_email_free(session, changes["email"], other_than=staff.id)
    if changes.get("team_id") is not None and changes["team_id"] != staff.team_id:
        await _ensure_team(session, changes["team_id"])

    new_role: Role = changes.get("role", staff.role)
    new_active: bool = changes.get("active", staff.active)
    was_admin = staff.role == Role.ADMIN and staff.active
    if was_admin and (new_role != Role.ADMIN or not new_active):
        if staff.id == actor_id:
            raise Conflict(
                "You cannot disable your own account or take away your own admin role; "
                "ask another admin to do it",
                code="own_account",
            )
        if not [admin for admin in admins if admin != staff.id]:
            raise Conflict(
                "This is the last active admin; make someone else admin first",
                code="last_admin",
            )

    changed: list[str] = []
    details: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "password":
            staff.password_hash = await _hash(value)
            changed.append(name)
        elif getattr(staff, name) != value:
            if name in {"role", "active"}:
                details[name] = {"from": getattr(staff, name), "to": value}
            setattr(staff, name, value)
            changed.append(name)
    if not changed:
        return staff

    # Open pages and sockets were authorised under the old role, and a new password is often
    # the answer to a leaked one: either way no session opened before this change survives.
    if "password" in changed or "role" in changed or ("active" in changed and not new_active):
        await end_all_sessions(session, staff.id)

    await _flush(session, f"The account {staff.email}")
    action = STAFF_UPDATED
    if "active" in changed:
        action = STAFF_ENABLED if new_active else STAFF_DISABLED
    _audit(
        session,
        actor_id=actor_id,
        action=action,
        target=staff,
        details={"changed": sorted(changed), **details},
    )
    return staff


async def disable_staff(session: AsyncSession, staff_id: uuid.UUID, *, actor_id: uuid.UUID | None) -> Staff:
    """Disable an account: it can no longer sign in and its open sessions end now."""
    return await update_staff(session, staff_id, StaffUpdate(active=False), actor_id=actor_id)


async def change_own_password(
    session: AsyncSession,
    *,
    staff_id: uuid.UUID,
    keep_session_id: str,
    current_password: str,
    new_password: str,
) -> None:
    """A signed-in staff member changes their password. The session making the change stays
    open; every other session of the account ends (someone else may hold one)."""
    staff = await _staff_for_update(session, staff_id)
    if not await asyncio.to_thread(verify_password, staff.password_hash, current_password):
        raise _field_error("current_password", "is not your current password", "wrong_password")
    staff.password_hash = await _hash(new_password)
    await session.execute(
        delete(StaffSession).where(StaffSession.staff_id == staff.id, StaffSession.id != keep_session_id)
    )
    _audit(session, actor_id=staff.id, action=STAFF_PASSWORD_CHANGED, target=staff)


# ---------------------------------------------------------------- teams


async def _team_name_free(session: AsyncSession, name: str, *, other_than: uuid.UUID | None = None) -> None:
    # "Kimono" and "kimono" side by side would confuse every team picker.
    query = select(Team.id).where(func.lower(Team.name) == name.lower())
    if other_than is not None:
        query = query.where(Team.id != other_than)
    if await session.scalar(query) is not None:
        raise Conflict(
            f"A team named {name!r} already exists", code="team_name_taken", details={"field": "name"}
        )


async def _member_count(session: AsyncSession, team_id: uuid.UUID) -> int:
    count = await session.scalar(select(func.count()).select_from(Staff).where(Staff.team_id == team_id))
    return int(count or 0)


async def list_teams(session: AsyncSession) -> list[TeamSummary]:
    """Teams by name, each with its member count, in one query."""
    members = func.count(Staff.id)
    rows = await session.execute(
        select(Team, members)
        .outerjoin(Staff, Staff.team_id == Team.id)
        .group_by(Team.id)
        .order_by(func.lower(Team.name))
    )
    return [TeamSummary(team, int(count)) for team, count in rows]


async def create_team(session: AsyncSession, data: TeamCreate, *, actor_id: uuid.UUID | None) -> TeamSummary:
    await _team_name_free(session, data.name)
    team = Team(name=data.name, description=data.description)
    session.add(team)
    await _flush(session, f"The team {data.name!r}")
    _audit(session, actor_id=actor_id, action=TEAM_CREATED, target=team, details={"name": team.name})
    return TeamSummary(team, 0)


async def _team_for_update(session: AsyncSession, team_id: uuid.UUID) -> Team:
    team = await session.scalar(select(Team).where(Team.id == team_id).with_for_update())
    if team is None:
        raise NotFound(f"No team with id {team_id}")
    return team


async def update_team(
    session: AsyncSession, team_id: uuid.UUID, data: TeamUpdate, *, actor_id: uuid.UUID | None
) -> TeamSummary:
    team = await _team_for_update(session, team_id)
    changes = data.changes()
    if "name" in changes and changes["name"] != team.name:
        await _team_name_free(session, changes["name"], other_than=team.id)
    changed = [name for name, value in changes.items() if getattr(team, name) != value]
    for name in changed:
        setattr(team, name, changes[name])
    if changed:
        await _flush(session, f"The team {team.name!r}")
        _audit(session, actor_id=actor_id, action=TEAM_UPDATED, target=team, details={"changed": changed})
    return TeamSummary(team, await _member_count(session, team.id))


async def delete_team(session: AsyncSession, team_id: uuid.UUID, *, actor_id: uuid.UUID | None) -> None:
    """Delete an empty team. A team with members (disabled ones included) is refused with
    409 rather than emptied silently: which team someone is in decides routing."""
    team = await _team_for_update(session, team_id)
    count = await _member_count(session, team.id)
    if count:
        raise Conflict(
            f"The team {team.name!r} still has {count} staff member(s); move them to another team first",
            code="team_not_empty",
            details={"member_count": count},
        )
    _audit(session, actor_id=actor_id, action=TEAM_DELETED, target=team, details={"name": team.name})
    await session.delete(team)
