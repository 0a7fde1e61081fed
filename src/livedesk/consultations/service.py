"""The consultation lifecycle: requested → queued → offered → active → wrap-up → closed,
plus abandoned (the shopper left first) and missed (nobody took it in time).

Every transition lands on the shopper's timeline in the same transaction, and the parties
hear of it after the commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations.outgoing import CONSULTATION_UPDATED, OFFER_MISSED, OFFER_WITHDRAWN
from livedesk.consultations.schemas import ConsultationOut, QueueJoin
from livedesk.identity import Actor, ShopperActor, authorise_party, staff_of
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict, NotFound, ValidationFailed
from livedesk.models import (
    Consultation,
    ConsultationKind,
    ConsultationStatus,
    PresenceStatus,
    Role,
    ShopperConnection,
    Staff,
    TimelineKind,
)
from livedesk.outbox import webhooks
from livedesk.realtime import rooms
from livedesk.realtime.emit import emit
from livedesk.staff import presence
from livedesk.staff.announce import announce as announce_presence
from livedesk.timeline import append_event

S = ConsultationStatus
OPEN = (S.REQUESTED, S.QUEUED, S.OFFERED, S.ACTIVE, S.WRAP_UP)
# A shopper can start a new consultation while the advisor is still wrapping up the last one.
IN_PROGRESS = (S.REQUESTED, S.QUEUED, S.OFFERED, S.ACTIVE)
WAITING = (S.QUEUED, S.OFFERED)


def recipients(c: Consultation) -> list[tuple[rooms.Room, str]]:
    """Who hears of a consultation change: the shopper's tabs, the assigned advisor's tabs,
    and the supervisors' board."""
    targets: list[tuple[rooms.Room, str]] = [
        (rooms.shopper_of(c.shopper_id, c.id), rooms.SHOPPER_NS),
        (rooms.supervisors(), rooms.STAFF_NS),
    ]
    if c.advisor_id is not None:
        targets.append((rooms.staff(c.advisor_id), rooms.STAFF_NS))
    return targets


def announce(session: AsyncSession, c: Consultation) -> None:
    payload = ConsultationOut.of(c).model_dump(mode="json")
    for room, namespace in recipients(c):
        emit(session, CONSULTATION_UPDATED, payload, room=room, namespace=namespace)


async def record_step(
    session: AsyncSession, c: Consultation, summary: str, actor: uuid.UUID | None = None
) -> None:
    """Put this step of the consultation on the shopper's timeline (same transaction)."""
    await append_event(
        session,
        c.shopper_id,
        TimelineKind.CONSULTATION,
        summary,
        {"status": c.status.value, "kind": c.kind.value, "advisor_id": c.advisor_id},
        actor_staff_id=actor,
        consultation_id=c.id,
        ref_id=str(c.id),
    )


async def load_for_party(
    session: AsyncSession, consultation_id: uuid.UUID, actor: Actor, *, write: bool = True
) -> Consultation:
    """The consultation, if ``actor`` is a party to it (locked for update when ``write``).
    Supervisors and admins may read any consultation but act on none."""
    c = await session.get(Consultation, consultation_id, with_for_update=write)
    if c is None:
        raise NotFound("No such consultation", code="consultation_not_found")
    authorise_party(actor, c, write=write)
    return c


async def join_queue(session: AsyncSession, shopper_id: uuid.UUID, request: QueueJoin) -> Consultation:
    """Put the shopper in the queue. Joining again while already waiting or talking returns
    the open consultation instead of a second one."""
    existing = await session.scalar(
        select(Consultation)
        .where(Consultation.shopper_id == shopper_id, Consultation.status.in_(IN_PROGRESS))
        .order_by(Consultation.requested_at.desc())
        .limit(1)
    )
    if existing is not None:
        return existing
    wait_for_nominated = False
    if request.nominated_advisor_id is not None:
        advisor = await session.get(Staff, request.nominated_advisor_id)
        if advisor is None or not advisor.active or advisor.role != Role.ADVISOR or not advisor.nominable:
            raise ValidationFailed(
                "field 'nominated_advisor_id': no such advisor to nominate", code="unknown_advisor"
            )
        view = await presence.get(session, advisor.id)
        available = view is not None and view.status == PresenceStatus.AVAILABLE
        if not available:
            if request.if_nominated_unavailable == "ask":
                raise Conflict(
                    f"{advisor.display_name} is not available right now: wait for them or talk to anyone",
                    code="nominated_unavailable",
                    details={
                        "advisor_id": str(advisor.id),
                        "status": view.status.value if view else "offline",
                    },
                )
            wait_for_nominated = request.if_nominated_unavailable == "wait"
    now = utcnow()
    c = Consultation(
        id=uuid.uuid4(),
        shopper_id=shopper_id,
        kind=request.kind,
        status=S.REQUESTED,
        nominated_advisor_id=request.nominated_advisor_id,
        wait_for_nominated=wait_for_nominated,
        skills=sorted(set(request.skills)),
        language=request.language,
        requested_at=now,
        passed_over=[],
    )
    session.add(c)
    await session.flush()
    await record_step(session, c, f"{c.kind.value} consultation requested")
    c.status = S.QUEUED
    c.queued_at = now
    await record_step(session, c, "waiting in the queue")
    announce(session, c)
    return c


async def leave_queue(session: AsyncSession, c: Consultation) -> Consultation:
    if c.status not in WAITING:
        raise Conflict(f"The consultation is {c.status.value}, not waiting", code="not_waiting")
    offered_to = c.offered_to_id
    c.status = S.ABANDONED
    c.offered_to_id = None
    c.offer_expires_at = None
    c.closed_at = utcnow()
    await record_step(session, c, "the shopper left the queue")
    announce(session, c)
    if offered_to is not None:
        emit(
            session,
            OFFER_WITHDRAWN,
            {"consultation_id": str(c.id), "reason": "abandoned"},
            room=rooms.staff(offered_to),
            namespace=rooms.STAFF_NS,
        )
    return c


async def set_wait_for_nominated(session: AsyncSession, c: Consultation, wait: bool) -> Consultation:
    if c.status != S.QUEUED or c.nominated_advisor_id is None:
        raise Conflict(
            "Only a queued consultation with a nominated advisor can change this", code="not_waiting"
        )
    c.wait_for_nominated = wait
    announce(session, c)
    return c


async def accept_offer(session: AsyncSession, c: Consultation, staff_id: uuid.UUID) -> Consultation:
    if c.status != S.OFFERED or c.offered_to_id != staff_id:
        raise Conflict("This offer is no longer yours to accept", code="offer_gone")
    c.status = S.ACTIVE
    c.advisor_id = staff_id
    c.offered_to_id = None
    c.offer_expires_at = None
    c.accepted_at = utcnow()
    await record_step(session, c, "advisor accepted", actor=staff_id)
    await _refresh_advisor(session, c)
    announce(session, c)
    return c


async def decline_offer(
    session: AsyncSession, c: Consultation, staff_id: uuid.UUID, reason: str
) -> Consultation:
    """The advisor said no, or let the offer time out: back in the queue, not offered to
    them again."""
    if c.status != S.OFFERED or c.offered_to_id != staff_id:
        raise Conflict("This offer is no longer yours", code="offer_gone")
    c.status = S.QUEUED
    c.offered_to_id = None
    c.offer_expires_at = None
    c.passed_over = [*c.passed_over, str(staff_id)]
    await record_step(session, c, f"offer {reason}", actor=staff_id)
    emit(
        session,
        OFFER_WITHDRAWN,
        {"consultation_id": str(c.id), "reason": reason},
        room=rooms.staff(staff_id),
        namespace=rooms.STAFF_NS,
    )
    announce(session, c)
    return c


async def miss_offer(
    session: AsyncSession, c: Consultation, staff_id: uuid.UUID, *, set_away: bool
) -> Consultation:
    """The offer timed out: back in the queue like a decline, and the advisor is told which
    offer she missed (``offer.missed``). With ``set_away`` she is also set Away until she says
    she is back, so the next shopper does not lose another offer's time on an empty desk."""
    await decline_offer(session, c, staff_id, "timed out")
    if set_away:
        view, changed = await presence.choose(session, staff_id, PresenceStatus.AWAY)
        if changed:
            announce_presence(session, view)
    emit(
        session,
        OFFER_MISSED,
        {
            "consultation_id": str(c.id),
            "shopper_id": str(c.shopper_id),
            "kind": c.kind.value,
            "queued_at": (c.queued_at or c.requested_at).isoformat(),
            "missed_at": utcnow().isoformat(),
            "set_away": set_away,
        },
        room=rooms.staff(staff_id),
        namespace=rooms.STAFF_NS,
    )
    return c


async def end(session: AsyncSession, c: Consultation, actor: Actor) -> Consultation:
    """Hang up / finish talking: the advisor goes to wrap-up (notes) before closing."""
    if c.status != S.ACTIVE:
        raise Conflict(f"The consultation is {c.status.value}, not active", code="not_active")
    who = "the shopper" if isinstance(actor, ShopperActor) else "the advisor"
    await _wrap_up(session, c, f"ended by {who}", staff_of(actor))
    return c


async def end_unattended(session: AsyncSession, c: Consultation) -> Consultation:
    """Both parties' pages have been gone past the grace period (browsers closed, a process
    died with them): the call ends and the advisor finds it in wrap-up when she is back."""
    if c.status != S.ACTIVE:
        raise Conflict(f"The consultation is {c.status.value}, not active", code="not_active")
    await _wrap_up(session, c, "ended: both parties left", None)
    return c


async def _wrap_up(session: AsyncSession, c: Consultation, summary: str, actor: uuid.UUID | None) -> None:
    c.status = S.WRAP_UP
    c.ended_at = utcnow()
    await record_step(session, c, summary, actor=actor)
    await _refresh_advisor(session, c)
    announce(session, c)


async def close(session: AsyncSession, c: Consultation, staff_id: uuid.UUID, notes: str) -> Consultation:
    if c.status == S.ACTIVE:
        c.ended_at = utcnow()
    elif c.status != S.WRAP_UP:
        raise Conflict(
            f"The consultation is {c.status.value}; only an active or wrap-up one closes", code="not_open"
        )
    c.status = S.CLOSED
    c.closed_at = utcnow()
    if notes:
        c.notes = notes
    handle = (c.ended_at - c.accepted_at).total_seconds() if c.ended_at and c.accepted_at else None
    await append_event(
        session,
        c.shopper_id,
        TimelineKind.CONSULTATION,
        f"{c.kind.value} consultation closed",
        {
            "status": c.status.value,
            "kind": c.kind.value,
            "advisor_id": c.advisor_id,
            "handle_seconds": handle,
            "notes": c.notes,
            "messages": c.last_seq,
        },
        actor_staff_id=staff_id,
        consultation_id=c.id,
        ref_id=str(c.id),
    )
    await webhooks.enqueue(
        session,
        webhooks.CONSULTATION_CLOSED,
        {
            "consultation_id": c.id,
            "shopper_id": c.shopper_id,
            "advisor_id": c.advisor_id,
            "kind": c.kind.value,
            "closed_at": c.closed_at,
            "handle_seconds": handle,
        },
    )
    await _refresh_advisor(session, c)
    announce(session, c)
    return c


async def escalate(
    session: AsyncSession,
    c: Consultation,
    kind: ConsultationKind,
    actor: Actor,
) -> Consultation:
    """Chat → call, or voice ↔ video during a call. An advisor holds one call at a time."""
    if c.status != S.ACTIVE or c.advisor_id is None:
        raise Conflict("Only an active consultation can become a call", code="not_active")
    if c.kind == kind:
        return c
    if c.kind == ConsultationKind.CHAT:
        other_call = await session.scalar(
            select(Consultation.id)
            .where(
                Consultation.advisor_id == c.advisor_id,
                Consultation.status == S.ACTIVE,
                Consultation.kind.in_(presence.CALL_KINDS),
                Consultation.id != c.id,
            )
            .limit(1)
        )
        if other_call is not None:
            raise Conflict("The advisor is already in another call", code="advisor_in_call")
    previous = c.kind
    c.kind = kind
    await record_step(session, c, f"{previous.value} → {kind.value}", actor=staff_of(actor))
    await _refresh_advisor(session, c)
    announce(session, c)
    return c


async def _refresh_advisor(session: AsyncSession, c: Consultation) -> None:
    if c.advisor_id is None:
        return
    await session.flush()
    view, changed = await presence.recompute(session, c.advisor_id)
    if changed:
        announce_presence(session, view)


async def open_for_shopper(session: AsyncSession, shopper_id: uuid.UUID) -> list[Consultation]:
    rows = await session.scalars(
        select(Consultation)
        .where(Consultation.shopper_id == shopper_id, Consultation.status.in_(OPEN))
        .order_by(Consultation.requested_at)
    )
    return list(rows.all())


async def open_for_advisor(session: AsyncSession, staff_id: uuid.UUID) -> list[Consultation]:
    rows = await session.scalars(
        select(Consultation)
        .where(
            ((Consultation.advisor_id == staff_id) & Consultation.status.in_((S.ACTIVE, S.WRAP_UP)))
            | ((Consultation.offered_to_id == staff_id) & (Consultation.status == S.OFFERED))
        )
        .order_by(Consultation.requested_at)
    )
    return list(rows.all())


def out(c: Consultation) -> dict[str, Any]:
    return ConsultationOut.of(c).model_dump(mode="json")


async def abandon_if_gone(session: AsyncSession, shopper_id: uuid.UUID) -> int:
    """The shopper has no page open any more: give up their place in the queue (abandoned),
    rather than offering an advisor someone who is not there. Active consultations stay."""
    still_here = await session.scalar(
        select(ShopperConnection.sid).where(ShopperConnection.shopper_id == shopper_id).limit(1)
    )
    if still_here is not None:
        return 0
    waiting = (
        await session.scalars(
            select(Consultation)
            .where(Consultation.shopper_id == shopper_id, Consultation.status.in_(WAITING))
            .with_for_update()
        )
    ).all()
    for c in waiting:
        await leave_queue(session, c)
    return len(waiting)


async def waiting_without_page(session: AsyncSession, shopper_ids: set[uuid.UUID]) -> list[uuid.UUID]:
    """Of ``shopper_ids``, those waiting in the queue with no page open: the only ones
    ``abandon_if_gone`` can act on (it checks again under the row lock). A few hundred ids
    per query."""
    found: list[uuid.UUID] = []
    ids = list(shopper_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        page_open = select(ShopperConnection.sid).where(
            ShopperConnection.shopper_id == Consultation.shopper_id
        )
        rows = await session.scalars(
            select(Consultation.shopper_id)
            .where(Consultation.shopper_id.in_(chunk), Consultation.status.in_(WAITING), ~page_open.exists())
            .distinct()
        )
        found += rows.all()
    return found
