"""What the booking capability forgets when a shopper is anonymised (privacy requests).

The bookings stay (they feed the advisors' figures) but nothing in them names the person, and
no mail that is still queued goes out: a mail is composed from the booking when it is sent,
so a reminder left in the outbox would go to whatever address the booking holds then.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.models import Booking, BookingMail


async def forget_shoppers(session: AsyncSession, shopper_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Blank the contact fields, cancel reason and extras of the shoppers' bookings, drop
    their unsent mails and the error texts of the sent ones (a refused address is quoted
    there). In the caller's transaction; returns counts per table."""
    booking_ids = select(Booking.id).where(Booking.shopper_id.in_(shopper_ids))
    dropped = await session.execute(
        delete(BookingMail)
        .where(BookingMail.booking_id.in_(booking_ids), BookingMail.sent_at.is_(None))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(BookingMail)
        .where(BookingMail.booking_id.in_(booking_ids))
        .values(last_error="")
        .execution_options(synchronize_session=False)
    )
    blanked = await session.execute(
        update(Booking)
        .where(Booking.shopper_id.in_(shopper_ids))
        .values(contact_name="", contact_email="", contact_phone=None, cancel_reason="", extra={})
        .execution_options(synchronize_session=False)
    )
    return {
        "bookings": int(getattr(blanked, "rowcount", 0)),
        "booking_mails": int(getattr(dropped, "rowcount", 0)),
    }
