"""Consultations follow the people in them: an active consultation whose shopper and advisor
both have no page open past a grace period ends (wrap-up, on the timeline); a waiting one
whose shopper has gone is given up (abandoned).

Who is "there" is read from the connection rows (``shopper_connections``,
``staff_connections``), which every process keeps for its own sockets and which outlive a
stopped or killed process only until the heartbeat sweep removes them. When both parties
were first seen gone is kept on the consultation itself (``extra``), so the grace is
measured the same by every process, survives restarts, and needs no timer that a deploy
could cancel. Every process runs the check; the row lock makes it act once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.consultations import service
from livedesk.kit.clock import utcnow
from livedesk.models import Consultation, ConsultationStatus, ShopperConnection, StaffConnection
from livedesk.settings import Settings

S = ConsultationStatus
# {"at": ISO time both parties were first seen gone, "while": "active" | "waiting"}
UNATTENDED = "unattended"
# A booked call is joined over REST before its page opens a socket (the device check comes
# first); its no-show rules are the booking's own (booking_no_show_grace_minutes).
BOOKING = "booking_id"
BATCH = 200


def _shopper_here() -> ColumnElement[bool]:
    return exists().where(ShopperConnection.shopper_id == Consultation.shopper_id)


def _advisor_here() -> ColumnElement[bool]:
    return exists().where(StaffConnection.staff_id == Consultation.advisor_id)


async def suspects(session: AsyncSession) -> list[uuid.UUID]:
    """Open consultations whose people look gone, or that carry a mark to clear. A read on
    indexed columns, so the idle check costs no write lock."""
    marked = Consultation.extra[UNATTENDED].as_string().is_not(None)
    unbooked = Consultation.extra[BOOKING].as_string().is_(None)
    rows = await session.scalars(
        select(Consultation.id)
        .where(
            or_(
                and_(Consultation.status == S.ACTIVE, ~_shopper_here(), ~_advisor_here()),
                and_(Consultation.status.in_(service.WAITING), unbooked, ~_shopper_here()),
                and_(Consultation.status.in_((S.ACTIVE, *service.WAITING)), marked),
            )
        )
        .limit(BATCH)
    )
    return list(rows.all())


@dataclass(frozen=True)
class Outcome:
    ended: bool = False
    abandoned: bool = False


async def judge(session: AsyncSession, settings: Settings, consultation_id: uuid.UUID) -> Outcome:
    """Look at one consultation again under its row lock and act: mark, clear, or end."""
    c = await session.get(Consultation, consultation_id, with_for_update=True)
    if c is None:
        return Outcome()
    if c.status == S.ACTIVE:
        phase, grace = "active", settings.consultation_gone_grace_seconds
        gone = not await _present(session, c.shopper_id, c.advisor_id)
    elif c.status in service.WAITING and BOOKING not in (c.extra or {}):
        phase, grace = "waiting", settings.queue_leave_grace_seconds
        gone = not await _present(session, c.shopper_id, None)
    else:
        return Outcome()
    now = utcnow()
    mark = (c.extra or {}).get(UNATTENDED)
    since = _since(mark, phase)
    if not gone:
        if mark is not None:
            _set_mark(c, None)
        return Outcome()
    if since is None:
        _set_mark(c, {"at": now.isoformat(), "while": phase})
        since = now
    if now - since < timedelta(seconds=grace):
        return Outcome()
    _set_mark(c, None)
    if phase == "active":
        await service.end_unattended(session, c)
        return Outcome(ended=True)
    await service.leave_queue(session, c)
    return Outcome(abandoned=True)


async def _present(session: AsyncSession, shopper_id: uuid.UUID, advisor_id: uuid.UUID | None) -> bool:
    shopper = await session.scalar(
        select(ShopperConnection.sid).where(ShopperConnection.shopper_id == shopper_id).limit(1)
    )
    if shopper is not None or advisor_id is None:
        return shopper is not None
    advisor = await session.scalar(
        select(StaffConnection.sid).where(StaffConnection.staff_id == advisor_id).limit(1)
    )
    return advisor is not None


def _since(mark: object, phase: str) -> datetime | None:
    """When the parties were first seen gone in this phase (a mark from the waiting phase
    does not count towards ending the call)."""
    if not isinstance(mark, dict) or mark.get("while") != phase:
        return None
    try:
        return datetime.fromisoformat(str(mark["at"]))
    except (KeyError, ValueError):
        return None


def _set_mark(c: Consultation, mark: dict[str, str] | None) -> None:
    extra = dict(c.extra or {})
    if mark is None:
        extra.pop(UNATTENDED, None)
    else:
        extra[UNATTENDED] = mark
    c.extra = extra
