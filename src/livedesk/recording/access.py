"""Who may see a shopper's recordings, and playback with every access audited."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.errors import Conflict, Forbidden, NotFound
from livedesk.models import AuditEntry, Consultation, Recording, RecordingStatus, Role
from livedesk.recording.schemas import RecordingOut
from livedesk.recording.service import consents_of, out
from livedesk.staff.sessions import Principal

PLAYBACK_ROLES = (Role.SUPERVISOR, Role.ADMIN)


async def may_see_shopper(session: AsyncSession, staff: Principal, shopper_id: uuid.UUID) -> bool:
    """Supervisors and admins see every shopper; an advisor sees the shoppers they have served
    (a consultation they were the advisor of)."""
    if staff.role in PLAYBACK_ROLES:
        return True
    served = await session.scalar(
        select(Consultation.id)
        .where(Consultation.shopper_id == shopper_id, Consultation.advisor_id == staff.staff_id)
        .limit(1)
    )
    return served is not None


async def get_for_staff(session: AsyncSession, recording_id: uuid.UUID, staff: Principal) -> RecordingOut:
    recording = await session.get(Recording, recording_id)
    if recording is None:
        raise NotFound("No such recording", code="recording_not_found")
    if not await may_see_shopper(session, staff, recording.shopper_id):
        raise Forbidden("You may not see this shopper's recordings", code="forbidden")
    return out(recording, await consents_of(session, recording.id))


async def list_for_shopper(
    session: AsyncSession, shopper_id: uuid.UUID, staff: Principal
) -> list[RecordingOut]:
    """The shopper's recordings, newest first (every state, so refusals show too)."""
    if not await may_see_shopper(session, staff, shopper_id):
        raise Forbidden("You may not see this shopper's recordings", code="forbidden")
    rows = list(
        await session.scalars(
            select(Recording)
            .where(Recording.shopper_id == shopper_id)
            .order_by(Recording.requested_at.desc())
        )
    )
    return [out(r, await consents_of(session, r.id)) for r in rows]


async def open_for_playback(
    session: AsyncSession, recording_id: uuid.UUID, staff: Principal, byte_range: str | None
) -> Recording:
    """The ready recording, if ``staff`` may see its shopper; every access (allowed or not)
    is written to the audit log in the caller's transaction."""
    recording = await session.get(Recording, recording_id)
    if recording is None:
        raise NotFound("No such recording", code="recording_not_found")
    allowed = await may_see_shopper(session, staff, recording.shopper_id)
    session.add(
        AuditEntry(
            id=uuid.uuid4(),
            actor_staff_id=staff.staff_id,
            action="recording.play" if allowed else "recording.play_denied",
            target_type="recording",
            target_id=str(recording.id),
            details={"shopper_id": str(recording.shopper_id), "range": byte_range or ""},
        )
    )
    if not allowed:
        return recording
    if recording.status != RecordingStatus.READY or recording.storage_key is None:
        raise Conflict(f"The recording is {recording.status.value}, not ready", code="not_ready")
    return recording
