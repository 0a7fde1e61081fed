"""Advisor presence: available / busy / away / offline, with the time it began.

What the advisor chose (available or away) is stored; what is true now is derived from it,
from their open tabs (``staff_connections``) and from whether they are in a call — and
stored too, with ``since``, so every process and every supervisor reads the same thing.

A closed tab's row is kept through the grace period (a reload comes back meanwhile) and
released afterwards by the process that held the socket. The row belongs to that process:
if it stops, it removes its rows and recomputes (``ProcessRegistry.stop``); if it dies, the
others sweep its rows once its heartbeat is stale. So the grace never rests on a timer
alone, and no advisor stays Available without an open console, whatever the timing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.kit.clock import utcnow
from livedesk.models import (
    AdvisorPresence,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PresenceStatus,
    StaffConnection,
)

CALL_KINDS = (ConsultationKind.VOICE, ConsultationKind.VIDEO)


@dataclass(frozen=True)
class PresenceView:
    staff_id: uuid.UUID
    status: PresenceStatus
    chosen: PresenceStatus
    since: datetime
    idle_since: datetime

    def as_event(self) -> dict[str, str]:
        return {
            "staff_id": str(self.staff_id),
            "status": self.status.value,
            "chosen": self.chosen.value,
            "since": self.since.isoformat(),
        }


def _view(row: AdvisorPresence) -> PresenceView:
    return PresenceView(row.staff_id, row.status, row.chosen, row.since, row.idle_since)


async def _row(session: AsyncSession, staff_id: uuid.UUID) -> AdvisorPresence:
    # Locked in PostgreSQL so two processes recomputing one advisor don't interleave.
    row = await session.scalar(
        select(AdvisorPresence).where(AdvisorPresence.staff_id == staff_id).with_for_update()
    )
    if row is None:
        row = AdvisorPresence(
            staff_id=staff_id, chosen=PresenceStatus.AVAILABLE, status=PresenceStatus.OFFLINE, since=utcnow()
        )
        session.add(row)
        await session.flush()
    return row


async def in_call(session: AsyncSession, staff_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Consultation.id)
        .where(
            Consultation.advisor_id == staff_id,
            Consultation.status == ConsultationStatus.ACTIVE,
            Consultation.kind.in_(CALL_KINDS),
        )
        .limit(1)
    )
    return found is not None


async def recompute(session: AsyncSession, staff_id: uuid.UUID) -> tuple[PresenceView, bool]:
    """Bring the stored status in line with the facts; says whether it changed."""
    row = await _row(session, staff_id)
    tabs = await session.scalar(
        select(func.count()).select_from(StaffConnection).where(StaffConnection.staff_id == staff_id)
    )
    if not tabs:
        status = PresenceStatus.OFFLINE
    elif await in_call(session, staff_id):
        status = PresenceStatus.BUSY
    else:
        status = row.chosen
    changed = status != row.status
    if changed:
        now = utcnow()
        if status == PresenceStatus.AVAILABLE:
            # Free again: the longest-idle rule counts from here.
            row.idle_since = now
        row.status = status
        row.since = now
    return _view(row), changed


async def choose(
    session: AsyncSession, staff_id: uuid.UUID, chosen: PresenceStatus
) -> tuple[PresenceView, bool]:
    row = await _row(session, staff_id)
    row.chosen = chosen
    return await recompute(session, staff_id)


async def connect(
    session: AsyncSession, staff_id: uuid.UUID, sid: str, process_id: str
) -> tuple[PresenceView, bool]:
    session.add(StaffConnection(sid=sid, staff_id=staff_id, process_id=process_id))
    await session.flush()
    return await recompute(session, staff_id)


async def release(session: AsyncSession, sid: str) -> tuple[PresenceView, bool] | None:
    """Forget one closed tab and recompute its owner, in one transaction (so no advisor is
    ever left Available with no tab). None when the row is already gone (the process that
    held it stopped and took its rows, or the sweep removed them)."""
    staff_id = await session.scalar(select(StaffConnection.staff_id).where(StaffConnection.sid == sid))
    if staff_id is None:
        return None
    await session.execute(delete(StaffConnection).where(StaffConnection.sid == sid))
    return await recompute(session, staff_id)


async def get(session: AsyncSession, staff_id: uuid.UUID) -> PresenceView | None:
    row = await session.get(AdvisorPresence, staff_id)
    return _view(row) if row else None


async def list_all(session: AsyncSession) -> list[PresenceView]:
    rows = (await session.scalars(select(AdvisorPresence))).all()
    return [_view(r) for r in rows]
