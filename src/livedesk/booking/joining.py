"""Joining a booked call, and no-shows.

The booking's join link opens ``/booking/?join=…``; an early shopper sees a countdown. From
``LIVEDESK_BOOKING_JOIN_EARLY_MINUTES`` before the start the page may join: the booking's
shopper gets a visitor token and a consultation in the queue with the booked advisor
nominated and waited for (``wait_for_nominated``), marked ``extra["booking_id"]`` — routing
offers it to that advisor alone, and their console shows it as a booked call.

The booking jobs then settle every booking once: attended when its advisor accepted the
consultation, otherwise a no-show (of the shopper, who never joined, or of the advisor, who
never took it) once the grace period after the start has passed. Each settlement is a
conditional UPDATE on the booking's status, so with several processes it happens once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import catalog
from livedesk.booking.records import record
from livedesk.consultations import service as consultations
from livedesk.consultations.schemas import QueueJoin
from livedesk.identity import VisitorClaims, VisitorTokens
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict
from livedesk.models import Booking, BookingStatus, Consultation, ConsultationKind
from livedesk.outbox import webhooks
from livedesk.settings import Settings


@dataclass(frozen=True)
class Joined:
    status: str  # "early" or "open"
    join_opens_at: datetime
    consultation: Consultation | None = None
    visitor_token: str | None = None
    expires_in: int | None = None


# A booked call's token lasts until the booking's end and this much longer (a call that runs
# over, a last chat line, the post-call survey).
TOKEN_GRACE = timedelta(hours=1)


def join_opens_at(booking: Booking, settings: Settings) -> datetime:
    return booking.starts_at - timedelta(minutes=settings.booking_join_early_minutes)


async def join(
    session: AsyncSession,
    settings: Settings,
    visitor_tokens: VisitorTokens,
    booking: Booking,
    *,
    now: datetime | None = None,
) -> Joined:
    """Join a booked call: "early" (with when it opens) before the join window, otherwise
    the consultation (created on the first join, the same one after a reload) and a visitor
    token for the booking's shopper."""
    now = now or utcnow()
    opens = join_opens_at(booking, settings)
    if booking.status == BookingStatus.PENDING:
        raise Conflict(
            "Confirm this booking first, with the link in the mail we sent", code="booking_pending"
        )
    if booking.status in (BookingStatus.CANCELLED, BookingStatus.EXPIRED):
        raise Conflict("This booking was cancelled", code="booking_closed")
    if (
        booking.status in (BookingStatus.NO_SHOW_SHOPPER, BookingStatus.NO_SHOW_ADVISOR)
        or now >= booking.ends_at
    ):
        raise Conflict("This booking is over; please book another time", code="booking_over")
    if now < opens:
        return Joined(status="early", join_opens_at=opens)
    c: Consultation | None = None
    if booking.consultation_id is not None:
        c = await session.get(Consultation, booking.consultation_id)
        if c is not None and c.status not in consultations.OPEN:
            c = None
    if c is None:
        ctype = await catalog.get_type(session, booking.consultation_type_id, active_only=False)
        c = await consultations.join_queue(
            session,
            booking.shopper_id,
            QueueJoin(
                kind=ConsultationKind(ctype.kind),
                nominated_advisor_id=booking.advisor_id,
                if_nominated_unavailable="wait",
            ),
        )
        # A booked call is for the booked advisor only, whether or not they are free this
        # very second; the post-call survey finds the booking through extra["booking_id"].
        c.nominated_advisor_id = booking.advisor_id
        c.wait_for_nominated = True
        c.extra = {**c.extra, "booking_id": str(booking.id)}
        booking.consultation_id = c.id
        booking.updated_at = now
        await consultations.record_step(session, c, "joined a booked call")
        consultations.announce(session, c)
    # For this consultation only: a booking link is a mailed secret, and what it opens must
    # not outgrow the booking (no renewal into a token for the shopper's whole profile).
    expires = booking.ends_at + TOKEN_GRACE
    claims = VisitorClaims(
        shopper_id=booking.shopper_id,
        visitor_id=secrets.token_urlsafe(12),
        consultation_id=c.id,
        expires_at=int(expires.timestamp()),
    )
    return Joined(
        status="open",
        join_opens_at=opens,
        consultation=c,
        visitor_token=visitor_tokens.issue(claims),
        expires_in=max(0, int((expires - now).total_seconds())),
    )


async def _settle(session: AsyncSession, booking: Booking, status: BookingStatus, summary: str) -> bool:
    """Move a confirmed booking to ``status`` — only if nobody else did first."""
    result = await session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == BookingStatus.CONFIRMED)
        .values(status=status, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    booking.status = status
    ctype = await catalog.get_type(session, booking.consultation_type_id, active_only=False)
    change = {
        BookingStatus.ATTENDED: "attended",
        BookingStatus.NO_SHOW_SHOPPER: "no_show_shopper",
        BookingStatus.NO_SHOW_ADVISOR: "no_show_advisor",
    }[status]
    await record(session, booking, ctype, summary, webhook=webhooks.BOOKING_CHANGED, extra={"change": change})
    return True


def _due(now: datetime, settings: Settings) -> Select[Booking, Consultation]:
    """Confirmed bookings with something to settle: their call was taken, or their grace
    period is over."""
    cutoff = now - timedelta(minutes=settings.booking_no_show_grace_minutes)
    return (
        select(Booking, Consultation)
        .outerjoin(Consultation, Consultation.id == Booking.consultation_id)
        .where(
            Booking.status == BookingStatus.CONFIRMED,
            or_(Booking.starts_at <= cutoff, Consultation.accepted_at.is_not(None)),
        )
        .order_by(Booking.starts_at)
        .limit(200)
    )


async def anything_to_settle(
    session: AsyncSession, settings: Settings, *, now: datetime | None = None
) -> bool:
    """Whether ``settle_bookings`` would find work (a read, so idle passes take no write lock)."""
    return (await session.execute(_due(now or utcnow(), settings))).first() is not None


async def settle_bookings(session: AsyncSession, settings: Settings, *, now: datetime | None = None) -> int:
    """Mark attended bookings, and no-shows once the grace period has passed. Returns how
    many bookings this call settled."""
    rows = (await session.execute(_due(now or utcnow(), settings))).all()
    settled = 0
    for booking, c in rows:
        if c is not None and c.accepted_at is not None:
            settled += await _settle(session, booking, BookingStatus.ATTENDED, "Booked call took place")
        elif c is None:
            settled += await _settle(
                session, booking, BookingStatus.NO_SHOW_SHOPPER, "No-show: the shopper did not join"
            )
        else:
            settled += await _settle(
                session, booking, BookingStatus.NO_SHOW_ADVISOR, "No-show: the advisor did not take the call"
            )
    return settled
