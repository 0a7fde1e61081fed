"""Pending bookings: a booking made by an anonymous shopper waits for the link in its mail.

Opening the link proves that the booker controls the address, so it does three things in one
transaction: it confirms the booking (mail, reminders, webhook), links the booking's guest
profile to the profile holding that address (``customers.guests.prove_email``), and changes
the booking's link nonce, so the token the booking form answered with (held by whoever
filled it in) stops working and only the mailed links open the booking.

Until then the booking holds its slot for ``LIVEDESK_BOOKING_PENDING_MINUTES``, gets no
reminders and cannot be joined; after that it is released (``EXPIRED``) by the next
booking transaction or the booking jobs, whichever comes first.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.booking import catalog, mails, payment_gate
from livedesk.booking.records import load, record
from livedesk.customers import guests, verification
from livedesk.kit.clock import utcnow
from livedesk.kit.errors import Conflict
from livedesk.models import Booking, BookingMailKind, BookingStatus, VerificationPurpose
from livedesk.outbox import webhooks
from livedesk.settings import Settings


def new_nonce() -> str:
    return secrets.token_hex(8)


async def hold(session: AsyncSession, settings: Settings, booking: Booking, now: datetime) -> None:
    """Make a just-added booking pending: it holds the slot, and the mail with the confirm
    link is queued (the verification row it names expires with the hold)."""
    booking.status = BookingStatus.PENDING
    booking.pending_until = now + timedelta(minutes=settings.booking_pending_minutes)
    booking.link_nonce = new_nonce()
    payment_gate.mark_awaiting_email(booking)
    await verification.start(
        session,
        shopper_id=booking.shopper_id,
        email=booking.contact_email,
        purpose=VerificationPurpose.BOOKING,
        booking_id=booking.id,
        expires_at=booking.pending_until,
    )


async def confirm(
    session: AsyncSession, settings: Settings, verification_id: uuid.UUID, *, now: datetime | None = None
) -> Booking:
    """Open a confirm link: the booking is confirmed, its guest profile proven, its links
    renewed. 409 ``link_used`` / ``link_expired`` / ``booking_closed``; 404 ``bad_token``."""
    now = now or utcnow()
    row = await verification.consume_link(session, verification_id, now=now)
    if row.booking_id is None:
        raise Conflict("This link does not confirm a booking", code="bad_token")
    booking = await load(session, row.booking_id, lock=True)
    if booking.status != BookingStatus.PENDING:
        raise Conflict(f"This booking is {booking.status.value.replace('_', ' ')}", code="booking_closed")
    proven = await guests.prove_email(
        session, booking.shopper_id, row.email, evidence={"verification_id": str(row.id), "via": "booking"}
    )
    # The merge re-pointed the row in the database; keep the object we hold in step.
    booking.shopper_id = proven.shopper_id
    if payment_gate.email_confirmed_first(booking):
        # Its deposit or price is not paid yet: confirmed once it is (payment_gate).
        booking.link_nonce = new_nonce()
        booking.updated_at = now
        await _changed(
            session, booking, "E-mail confirmed, waiting for the payment", {"change": "email_confirmed"}
        )
        return booking
    booking.status = BookingStatus.CONFIRMED
    booking.pending_until = None
    booking.link_nonce = new_nonce()
    booking.updated_at = now
    await _changed(
        session,
        booking,
        "Booking confirmed by e-mail",
        {"change": "confirmed", "linked_to_existing_profile": proven.merged},
    )
    await mails.queue_for_change(session, settings, booking, BookingMailKind.CONFIRMATION, now)
    return booking


async def _changed(session: AsyncSession, booking: Booking, what: str, extra: dict[str, object]) -> None:
    """The timeline row and ``booking.changed`` webhook of a change, named with its type."""
    ctype = await catalog.get_type(session, booking.consultation_type_id, active_only=False)
    await record(
        session, booking, ctype, f"{what}: {ctype.name}", webhook=webhooks.BOOKING_CHANGED, extra=extra
    )


def _expired_pending(now: datetime, advisor_ids: list[uuid.UUID] | None) -> Select[Booking]:
    stmt = select(Booking).where(Booking.status == BookingStatus.PENDING, Booking.pending_until <= now)
    if advisor_ids is not None:
        stmt = stmt.where(Booking.advisor_id.in_(advisor_ids))
    return stmt.order_by(Booking.pending_until).limit(200)


async def anything_to_release(session: AsyncSession, *, now: datetime | None = None) -> bool:
    """Whether ``release_unconfirmed`` would find work (a read: idle passes take no write lock)."""
    return (await session.execute(_expired_pending(now or utcnow(), None))).first() is not None


async def release_unconfirmed(
    session: AsyncSession, *, now: datetime | None = None, advisor_ids: list[uuid.UUID] | None = None
) -> int:
    """Pending bookings whose hold has passed become EXPIRED and free their slot. The booking
    transaction calls this for the advisors it is about to book (PostgreSQL's exclusion
    constraint counts pending bookings), the booking jobs for everyone."""
    now = now or utcnow()
    rows = (await session.scalars(_expired_pending(now, advisor_ids).with_for_update())).all()
    for booking in rows:
        booking.status = BookingStatus.EXPIRED
        booking.updated_at = now
        await _changed(session, booking, "Booking released (not confirmed in time)", {"change": "expired"})
    if rows:
        await session.flush()
    return len(rows)
