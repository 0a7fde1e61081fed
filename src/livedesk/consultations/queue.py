"""The queue: offering waiting consultations to advisors, moving unanswered offers on,
giving up on consultations nobody took, and telling each waiting shopper where they stand."""

from __future__ import annotations

import uuid
from datetime import timedelta

import socketio
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations import routing, service
from livedesk.consultations.schemas import ConsultationOut, QueuePosition
from livedesk.kit.clock import utcnow
from livedesk.models import (
    AdvisorPresence,
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PresenceStatus,
    Role,
    Staff,
)
from livedesk.realtime import rooms
from livedesk.realtime.emit import emit
from livedesk.settings import Settings

S = ConsultationStatus
OFFER_NEW = "offer.new"
QUEUE_POSITION = "queue.position"
DEFAULT_HANDLE_SECONDS = 300.0


async def _serialise(session: AsyncSession) -> None:
    """One routing pass at a time across processes. SQLite's write transaction already is
    exclusive; PostgreSQL needs a transaction-scoped advisory lock."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(727001)"))


async def _candidates(session: AsyncSession) -> list[routing.Candidate]:
    rows = (
        await session.execute(
            select(Staff, AdvisorPresence)
            .join(AdvisorPresence, AdvisorPresence.staff_id == Staff.id)
            .where(
                AdvisorPresence.status == PresenceStatus.AVAILABLE,
                Staff.active.is_(True),
                Staff.role == Role.ADVISOR,
            )
        )
    ).all()
    if not rows:
        return []
    ids = [staff.id for staff, _ in rows]
    load = (
        await session.execute(
            select(
                Consultation.advisor_id, Consultation.offered_to_id, Consultation.kind, Consultation.status
            ).where(
                Consultation.status.in_((S.ACTIVE, S.OFFERED)),
                (Consultation.advisor_id.in_(ids)) | (Consultation.offered_to_id.in_(ids)),
            )
        )
    ).all()
    chats: dict[uuid.UUID, int] = {}
    calls: set[uuid.UUID] = set()
    offers: set[uuid.UUID] = set()
    for advisor_id, offered_to_id, kind, status in load:
        if status == S.OFFERED and offered_to_id is not None:
            offers.add(offered_to_id)
        elif status == S.ACTIVE and advisor_id is not None:
            if kind == ConsultationKind.CHAT:
                chats[advisor_id] = chats.get(advisor_id, 0) + 1
            else:
                calls.add(advisor_id)
    return [
        routing.Candidate(
            staff_id=staff.id,
            skills=frozenset(staff.skills),
            languages=frozenset(staff.languages),
            idle_since=state.idle_since,
            chats=chats.get(staff.id, 0),
            in_call=staff.id in calls,
            has_pending_offer=staff.id in offers,
            team_id=staff.team_id,
        )
        for staff, state in rows
    ]


def _request(c: Consultation) -> routing.Request:
    return routing.Request(
        kind=c.kind,
        nominated=c.nominated_advisor_id,
        wait_for_nominated=c.wait_for_nominated,
        skills=frozenset(c.skills),
        language=c.language,
        passed_over=frozenset(uuid.UUID(s) for s in c.passed_over),
        teams=frozenset(uuid.UUID(t) for t in c.extra.get("team_ids", [])),
    )


async def anything_waiting(session: AsyncSession) -> bool:
    """Whether a routing pass has anything to do: a consultation queued or offered (an offer
    may expire). A read on the status index, so the idle tick takes no write lock."""
    found = await session.scalar(
        select(Consultation.id).where(Consultation.status.in_((S.QUEUED, S.OFFERED))).limit(1)
    )
    return found is not None


async def route(session: AsyncSession, sio: socketio.AsyncServer, settings: Settings) -> int:
    """Offer as many waiting consultations as there are advisors to take them, oldest
    first. Returns how many offers were made."""
    await _serialise(session)
    now = utcnow()
    await _expire_offers(session, sio, now)
    await _give_up(session, sio, settings, now)
    waiting = (
        await session.scalars(
            select(Consultation)
            .where(Consultation.status == S.QUEUED)
            .order_by(Consultation.queued_at)
            .limit(200)
        )
    ).all()
    if not waiting:
        return 0
    candidates = await _candidates(session)
    made = 0
    for c in waiting:
        if not candidates:
            break
        chosen = routing.choose_advisor(_request(c), candidates, settings.max_chats_per_advisor)
        if chosen is None:
            continue
        c.status = S.OFFERED
        c.offered_to_id = chosen
        c.offer_expires_at = now + timedelta(seconds=settings.offer_timeout_seconds)
        await service.record_step(session, c, "offered to an advisor", actor=chosen)
        payload = {
            **ConsultationOut.of(c).model_dump(mode="json"),
            "offer_expires_at": c.offer_expires_at.isoformat(),
        }
        emit(session, sio, OFFER_NEW, payload, room=rooms.staff(chosen), namespace=rooms.STAFF_NS)
        service.announce(session, sio, c)
        # The chosen advisor has an offer in hand now: not eligible for another this pass.
        candidates = [
            cand
            if cand.staff_id != chosen
            else routing.Candidate(**{**cand.__dict__, "has_pending_offer": True})
            for cand in candidates
        ]
        made += 1
    return made


async def _expire_offers(session: AsyncSession, sio: socketio.AsyncServer, now: object) -> None:
    expired = (
        await session.scalars(
            select(Consultation).where(Consultation.status == S.OFFERED, Consultation.offer_expires_at < now)
        )
    ).all()
    for c in expired:
        assert c.offered_to_id is not None
        await service.decline_offer(session, sio, c, c.offered_to_id, "timed out")


async def _give_up(session: AsyncSession, sio: socketio.AsyncServer, settings: Settings, now: object) -> None:
    cutoff = utcnow() - timedelta(seconds=settings.queue_max_wait_seconds)
    stale = (
        await session.scalars(
            select(Consultation).where(Consultation.status == S.QUEUED, Consultation.queued_at < cutoff)
        )
    ).all()
    for c in stale:
        c.status = S.MISSED
        c.closed_at = utcnow()
        await service.record_step(session, c, "nobody was free to answer")
        service.announce(session, sio, c)


async def average_handle_seconds(session: AsyncSession) -> float:
    rows = (
        await session.execute(
            select(Consultation.accepted_at, Consultation.ended_at)
            .where(Consultation.accepted_at.is_not(None), Consultation.ended_at.is_not(None))
            .order_by(Consultation.ended_at.desc())
            .limit(50)
        )
    ).all()
    spans = [(ended - accepted).total_seconds() for accepted, ended in rows if ended and accepted]
    return sum(spans) / len(spans) if spans else DEFAULT_HANDLE_SECONDS


async def positions(session: AsyncSession) -> list[tuple[uuid.UUID, QueuePosition]]:
    """Each waiting shopper's place in the queue and estimated wait."""
    waiting = (
        await session.execute(
            select(Consultation.id, Consultation.shopper_id, Consultation.status)
            .where(Consultation.status.in_((S.QUEUED, S.OFFERED)))
            .order_by(Consultation.queued_at)
        )
    ).all()
    if not waiting:
        return []
    online = await session.scalar(
        select(func.count())
        .select_from(AdvisorPresence)
        .join(Staff, Staff.id == AdvisorPresence.staff_id)
        .where(
            AdvisorPresence.status.in_((PresenceStatus.AVAILABLE, PresenceStatus.BUSY)),
            Staff.role == Role.ADVISOR,
        )
    )
    handle = await average_handle_seconds(session)
    advisors = int(online or 0)
    return [
        (
            shopper_id,
            QueuePosition(
                consultation_id=cid,
                position=index,
                estimated_wait_seconds=routing.estimated_wait_seconds(index, advisors, handle),
                advisors_online=advisors,
            ),
        )
        for index, (cid, shopper_id, _status) in enumerate(waiting, start=1)
    ]
