"""Who may see which recording, and every staff read of recordings audited.

The rule follows the relationship, not the shopper: an advisor sees the recordings of the
consultations they took part in (they accepted it, or started the recording in it) and no
other recording of that shopper — however they came to serve the shopper, so a call they
booked or joined for themselves gives them no reach into the shopper's earlier calls.
Supervisors and admins see every recording. Every list, metadata read and media request by
staff is written to the audit log in the caller's transaction, refusals too; a refusal is
handed back as an ``Outcome`` so the handler can commit its audit entry before answering.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk import audit
from livedesk.identity import Principal
from livedesk.kit.errors import AppError, Conflict, Forbidden, NotFound
from livedesk.models import (
    Consultation,
    Recording,
    RecordingConsent,
    RecordingStatus,
    Role,
)
from livedesk.recording.schemas import RecordingOut
from livedesk.recording.service import consents_of, out

# Roles that see every shopper's recordings (each access audited like any other).
WIDE_ROLES = (Role.SUPERVISOR, Role.ADMIN)

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What an access decided: the value, or the refusal to raise once the audit entry that
    records it has been committed (raising inside the transaction would roll it back)."""

    value: T | None = None
    refusal: AppError | None = None

    def unwrap(self) -> T:
        if self.refusal is not None:
            raise self.refusal
        assert self.value is not None
        return self.value


def _not_a_party() -> Forbidden:
    return Forbidden(
        "Only the advisor of this recording's consultation, supervisors and admins may see it",
        code="forbidden",
    )


def _party_of(staff_id: uuid.UUID) -> ColumnElement[bool]:
    """SQL: the recording (joined with its consultation) is one ``staff_id`` took part in."""
    return or_(Recording.advisor_id == staff_id, Consultation.advisor_id == staff_id)


def _audit(
    session: AsyncSession,
    staff: Principal,
    action: str,
    target_type: str,
    target_id: uuid.UUID,
    **details: Any,
) -> None:
    audit.record(
        session,
        actor=staff.staff_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details={"role": staff.role.value, **details},
    )


async def may_see_shopper(session: AsyncSession, staff: Principal, shopper_id: uuid.UUID) -> bool:
    """Whether ``staff`` may ask for the shopper's recordings at all: supervisors and admins,
    or an advisor who has been the advisor of one of the shopper's consultations (who then
    gets only the recordings of their own consultations — see ``list_for_shopper``)."""
    if staff.role in WIDE_ROLES:
        return True
    served = await session.scalar(
        select(Consultation.id)
        .where(Consultation.shopper_id == shopper_id, Consultation.advisor_id == staff.staff_id)
        .limit(1)
    )
    return served is not None


async def may_play(session: AsyncSession, staff: Principal, recording: Recording) -> bool:
    """Supervisors and admins play any recording; an advisor only one of a consultation they
    took part in. Having served the same shopper in another consultation gives nothing."""
    if staff.role in WIDE_ROLES:
        return True
    if recording.advisor_id == staff.staff_id:
        return True
    accepted_by = await session.scalar(
        select(Consultation.advisor_id).where(Consultation.id == recording.consultation_id)
    )
    return accepted_by == staff.staff_id


async def may_play_id(session: AsyncSession, staff: Principal, recording_id: uuid.UUID) -> bool:
    """``may_play`` by id, for views that hand out a player address (the customer history).
    Supervisors and admins get the address as before; an advisor only for an existing
    recording they took part in."""
    if staff.role in WIDE_ROLES:
        return True
    recording = await session.get(Recording, recording_id)
    return recording is not None and await may_play(session, staff, recording)


async def _checked(
    session: AsyncSession, recording_id: uuid.UUID, staff: Principal, action: str, **details: Any
) -> Recording | None:
    """The recording if ``staff`` may play it, else None; 404 for none. Either way the ask is
    audited: ``action`` or ``action``_denied."""
    recording = await session.get(Recording, recording_id)
    if recording is None:
        raise NotFound("No such recording", code="recording_not_found")
    allowed = await may_play(session, staff, recording)
    _audit(
        session,
        staff,
        action if allowed else f"{action}_denied",
        "recording",
        recording.id,
        shopper_id=str(recording.shopper_id),
        **details,
    )
    return recording if allowed else None


async def get_for_staff(
    session: AsyncSession, recording_id: uuid.UUID, staff: Principal
) -> Outcome[RecordingOut]:
    """One recording's state and consents, audited as ``recording.view`` (or ``_denied``)."""
    recording = await _checked(session, recording_id, staff, "recording.view")
    if recording is None:
        return Outcome(refusal=_not_a_party())
    return Outcome(out(recording, await consents_of(session, recording.id)))


async def list_for_shopper(
    session: AsyncSession, shopper_id: uuid.UUID, staff: Principal
) -> Outcome[list[RecordingOut]]:
    """The shopper's recordings ``staff`` may see, newest first (every state, so refusals show
    too): all of them for supervisors and admins, an advisor's own consultations' only.
    Audited as ``recording.list`` with the ids handed out (or ``recording.list_denied``)."""
    if not await may_see_shopper(session, staff, shopper_id):
        _audit(session, staff, "recording.list_denied", "shopper", shopper_id)
        return Outcome(refusal=Forbidden("You may not see this shopper's recordings", code="forbidden"))
    query = (
        select(Recording)
        .join(Consultation, Consultation.id == Recording.consultation_id)
        .where(Recording.shopper_id == shopper_id)
        .order_by(Recording.requested_at.desc(), Recording.id)
    )
    if staff.role not in WIDE_ROLES:
        query = query.where(_party_of(staff.staff_id))
    rows = list(await session.scalars(query))
    consents: dict[uuid.UUID, list[RecordingConsent]] = defaultdict(list)
    if rows:
        for consent in await session.scalars(
            select(RecordingConsent).where(RecordingConsent.recording_id.in_([r.id for r in rows]))
        ):
            consents[consent.recording_id].append(consent)
    _audit(
        session,
        staff,
        "recording.list",
        "shopper",
        shopper_id,
        scope="all" if staff.role in WIDE_ROLES else "own",
        recording_ids=[str(r.id) for r in rows],
    )
    return Outcome([out(r, consents[r.id]) for r in rows])


async def open_for_playback(
    session: AsyncSession, recording_id: uuid.UUID, staff: Principal, byte_range: str | None
) -> Outcome[Recording]:
    """The ready recording, if ``staff`` may play it. Every request is audited in the caller's
    transaction: ``recording.play`` with the range asked for, or ``recording.play_denied``."""
    recording = await _checked(session, recording_id, staff, "recording.play", range=byte_range or "")
    if recording is None:
        return Outcome(refusal=_not_a_party())
    if recording.status != RecordingStatus.READY or recording.storage_key is None:
        # Raised in the transaction: nothing is played, so no ``recording.play`` is kept.
        raise Conflict(f"The recording is {recording.status.value}, not ready", code="not_ready")
    return Outcome(recording)
