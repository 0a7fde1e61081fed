"""Routing decisions, one change at a time: a shopper joined (offer that consultation), an
advisor became free (offer her the oldest consultation she can take), an offer timed out or
was declined (offer it on). Each decision locks only the rows it decides on — the
consultation and the chosen advisor's presence, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
SQLite's one writer otherwise — so processes decide different changes side by side, and one
consultation is never offered twice nor an advisor offered more than she can take.

The rules themselves are routing.py's (pure); this module reads only what they need: the
advisors who can take something right now (available, no offer in hand, not in a call) as
plain columns, and the queued consultations oldest first, stopping as soon as nobody is free.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations import routing, service
from livedesk.consultations.outgoing import OFFER_NEW
from livedesk.consultations.schemas import ConsultationOut
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
# Queued consultations read per scan (the old full pass's bound too).
BATCH = 200
# A page of the queue when looking for one advisor's next consultation (usually the first).
PAGE = 25
# Up to this many free advisors, their load is read by their ids; more, by status alone.
FEW = 50


@dataclass(frozen=True)
class Offer:
    """A decision made: ``consultation_id`` offered to ``advisor_id`` until ``expires_at``."""

    consultation_id: uuid.UUID
    advisor_id: uuid.UUID
    expires_at: datetime


async def free_advisors(session: AsyncSession) -> list[routing.Candidate]:
    """Advisors routing may offer something to now: available, active, no offer in hand and
    not in a call (chat capacity is routing.can_take's to judge). Two column-only reads on
    indexed columns: presence by status, consultations by status."""
    rows = (
        await session.execute(
            select(Staff.id, Staff.skills, Staff.languages, Staff.team_id, AdvisorPresence.idle_since)
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
    query = select(
        Consultation.advisor_id, Consultation.offered_to_id, Consultation.kind, Consultation.status
    ).where(Consultation.status.in_((S.ACTIVE, S.OFFERED)))
    if len(rows) <= FEW:
        # Usually one or two free (the one a change freed): only what they hold.
        ids = [row[0] for row in rows]
        query = query.where(Consultation.advisor_id.in_(ids) | Consultation.offered_to_id.in_(ids))
    load = (await session.execute(query)).all()
    chats: dict[uuid.UUID, int] = {}
    held: set[uuid.UUID] = set()  # an offer in hand or a call under way
    for advisor_id, offered_to_id, kind, status in load:
        if status == S.OFFERED and offered_to_id is not None:
            held.add(offered_to_id)
        elif status == S.ACTIVE and advisor_id is not None:
            if kind == ConsultationKind.CHAT:
                chats[advisor_id] = chats.get(advisor_id, 0) + 1
            else:
                held.add(advisor_id)
    return [
        routing.Candidate(
            staff_id=staff_id,
            skills=frozenset(skills),
            languages=frozenset(languages),
            idle_since=idle_since,
            chats=chats.get(staff_id, 0),
            in_call=False,
            has_pending_offer=False,
            team_id=team_id,
        )
        for staff_id, skills, languages, team_id, idle_since in rows
        if staff_id not in held
    ]


def _request(row: Row[Any] | Consultation) -> routing.Request:
    extra = row.extra or {}
    return routing.Request(
        kind=row.kind,
        nominated=row.nominated_advisor_id,
        wait_for_nominated=row.wait_for_nominated,
        skills=frozenset(row.skills or ()),
        language=row.language,
        passed_over=frozenset(uuid.UUID(s) for s in row.passed_over or ()),
        teams=frozenset(uuid.UUID(t) for t in extra.get("team_ids", [])),
    )


_QUEUED_COLUMNS = (
    Consultation.id,
    Consultation.queued_at,
    Consultation.kind,
    Consultation.nominated_advisor_id,
    Consultation.wait_for_nominated,
    Consultation.skills,
    Consultation.language,
    Consultation.passed_over,
    Consultation.extra,
)


async def _queued(
    session: AsyncSession, consultation_id: uuid.UUID | None, limit: int, page: int
) -> AsyncIterator[Row[Any] | Consultation]:
    """The queued consultation ``consultation_id``, or the queue oldest first (up to
    ``limit``), read ``page`` rows at a time so that a decision found early reads no more."""
    if consultation_id is not None:
        # One consultation: locked straight away (one statement less per join).
        c = await _lock_queued(session, consultation_id)
        if c is not None:
            yield c
        return
    query = select(*_QUEUED_COLUMNS).where(Consultation.status == S.QUEUED)
    seen = 0
    after: tuple[datetime | None, uuid.UUID] | None = None
    while seen < limit:
        paged = query.order_by(Consultation.queued_at, Consultation.id).limit(min(page, limit - seen))
        if after is not None:
            paged = paged.where(tuple_(Consultation.queued_at, Consultation.id) > tuple_(*after))
        rows = (await session.execute(paged)).all()
        for row in rows:
            yield row
        if len(rows) < page:
            return
        seen += len(rows)
        after = (rows[-1].queued_at, rows[-1].id)


async def _lock_queued(session: AsyncSession, consultation_id: uuid.UUID) -> Consultation | None:
    """The consultation under its row lock, if it is still queued and nobody else holds it
    (another process deciding on it, or the shopper leaving: theirs to finish)."""
    found = await session.scalars(
        select(Consultation)
        .where(Consultation.id == consultation_id, Consultation.status == S.QUEUED)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return found.first()


async def _claim_advisor(
    session: AsyncSession, staff_id: uuid.UUID, kind: ConsultationKind, max_chats: int
) -> bool:
    """Lock the advisor's presence row (skipped when another decision holds it) and check,
    after the lock and so from what is committed now, that she can still take ``kind``.
    SQLite's write transaction is exclusive from its start: what ``free_advisors`` read in
    it is still true, nothing to lock or read again."""
    if session.get_bind().dialect.name == "sqlite":
        return True
    locked = await session.scalar(
        select(AdvisorPresence.staff_id)
        .where(AdvisorPresence.staff_id == staff_id, AdvisorPresence.status == PresenceStatus.AVAILABLE)
        .with_for_update(skip_locked=True)
    )
    if locked is None:
        return False
    load = (
        await session.execute(
            select(Consultation.kind, Consultation.status).where(
                Consultation.status.in_((S.ACTIVE, S.OFFERED)),
                (Consultation.advisor_id == staff_id) | (Consultation.offered_to_id == staff_id),
            )
        )
    ).all()
    chats = 0
    for held_kind, status in load:
        if status == S.OFFERED or held_kind != ConsultationKind.CHAT:
            return False
        chats += 1
    return kind != ConsultationKind.CHAT or chats < max_chats


async def offer(session: AsyncSession, settings: Settings, c: Consultation, chosen: uuid.UUID) -> Offer:
    now = utcnow()
    c.status = S.OFFERED
    c.offered_to_id = chosen
    c.offer_expires_at = now + timedelta(seconds=settings.offer_timeout_seconds)
    await service.record_step(session, c, "offered to an advisor", actor=chosen)
    payload = {
        **ConsultationOut.of(c).model_dump(mode="json"),
        "offer_expires_at": c.offer_expires_at.isoformat(),
    }
    emit(session, OFFER_NEW, payload, room=rooms.staff(chosen), namespace=rooms.STAFF_NS)
    service.announce(session, c)
    return Offer(c.id, chosen, c.offer_expires_at)


async def decide(
    session: AsyncSession,
    settings: Settings,
    *,
    consultation_id: uuid.UUID | None = None,
    advisor_id: uuid.UUID | None = None,
    limit: int = BATCH,
) -> list[Offer]:
    """Make the offers a change allows: for ``consultation_id``, that one; otherwise the
    queued consultations oldest first while someone is free (with ``advisor_id``, until she
    has an offer or cannot take one). Returns the offers made."""
    max_chats = settings.max_chats_per_advisor
    free = await free_advisors(session)
    if advisor_id is not None and not any(f.staff_id == advisor_id for f in free):
        return []
    made: list[Offer] = []
    if not free:
        return made
    page = PAGE if advisor_id is not None else limit
    async for row in _queued(session, consultation_id, limit, page):
        if not any(routing.can_take(f, row.kind, max_chats) for f in free):
            continue
        if routing.choose_advisor(_request(row), free, max_chats) is None:
            continue
        c = row if isinstance(row, Consultation) else await _lock_queued(session, row.id)
        if c is None:
            continue
        request = _request(c)  # the locked row's, which may have moved since the read
        while (chosen := routing.choose_advisor(request, free, max_chats)) is not None:
            if await _claim_advisor(session, chosen, c.kind, max_chats):
                break
            # Taken meanwhile (another process's decision, or a call): not free here either.
            free = [f for f in free if f.staff_id != chosen]
        if chosen is None:
            continue
        made.append(await offer(session, settings, c, chosen))
        # An offer in hand: not eligible for another until it is answered.
        free = [f if f.staff_id != chosen else replace(f, has_pending_offer=True) for f in free]
        if advisor_id is not None and chosen == advisor_id:
            break
        if not any(not f.has_pending_offer for f in free):
            break
    return made


async def expire_offer(
    session: AsyncSession, settings: Settings, consultation_id: uuid.UUID
) -> uuid.UUID | None:
    """The offer's deadline has passed: back in the queue (routing then offers it on).
    Returns the advisor who missed it, or None when it was answered or is not due yet."""
    c = (
        await session.scalars(
            select(Consultation)
            .where(
                Consultation.id == consultation_id,
                Consultation.status == S.OFFERED,
                Consultation.offer_expires_at <= utcnow(),
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).first()
    if c is None or c.offered_to_id is None:
        return None
    missed = c.offered_to_id
    await service.miss_offer(session, c, missed, set_away=settings.away_after_missed_offer)
    return missed


async def due_offers(session: AsyncSession, limit: int = BATCH) -> list[uuid.UUID]:
    """Offers past their deadline (on the status/deadline index): for the sweep, in case the
    process that made one, and its timer, went away."""
    rows = await session.scalars(
        select(Consultation.id)
        .where(Consultation.status == S.OFFERED, Consultation.offer_expires_at <= utcnow())
        .limit(limit)
    )
    return list(rows.all())


async def give_up_stale(session: AsyncSession, settings: Settings) -> int:
    """Queued longer than ``queue_max_wait_seconds``: nobody was free to answer (missed)."""
    cutoff = utcnow() - timedelta(seconds=settings.queue_max_wait_seconds)
    stale = (
        await session.scalars(
            select(Consultation)
            .where(Consultation.status == S.QUEUED, Consultation.queued_at < cutoff)
            .with_for_update(skip_locked=True)
            .limit(BATCH)
        )
    ).all()
    for c in stale:
        c.status = S.MISSED
        c.closed_at = utcnow()
        await service.record_step(session, c, "nobody was free to answer")
        service.announce(session, c)
    return len(stale)
